package pkgbuild

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ingotfleet/ingot/builder/resolve"
)

// Reduce evaluates the architecture restrictions ([amd64 !i386],
// wildcards linux-any, any-amd64) and build profile restrictions
// (<!nocheck> <stage1 cross>) of a source package's build relation field
// for the build architecture arch and the active profiles, as
// dpkg-checkbuilddeps does: an alternative whose restrictions do not hold
// is dropped, a relation left without alternatives is dropped. The
// result is a plain relation field that resolve.ParseRelations reads.
func Reduce(field, arch string, profiles []string) (string, error) {
	var items []string
	if strings.TrimSpace(field) == "" {
		return "", nil
	}
	for _, item := range strings.Split(field, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue // dpkg allows a trailing comma
		}
		var alts []string
		for _, alt := range strings.Split(item, "|") {
			s, keep, err := reduceAlt(strings.TrimSpace(alt), arch, profiles)
			if err != nil {
				return "", fmt.Errorf("%q: %w", truncate(item), err)
			}
			if keep {
				alts = append(alts, s)
			}
		}
		if len(alts) > 0 {
			items = append(items, strings.Join(alts, " | "))
		}
	}
	out := strings.Join(items, ", ")
	if _, err := resolve.ParseRelations(out); err != nil {
		return "", err
	}
	return out, nil
}

// reduceAlt splits one alternative into its relation (name and version)
// and its restrictions, and evaluates them.
func reduceAlt(s, arch string, profiles []string) (string, bool, error) {
	i := strings.IndexAny(s, "[<")
	if i < 0 {
		return s, true, nil
	}
	// A version in parentheses comes before the restrictions.
	if p := strings.IndexByte(s, '('); p >= 0 && p < i {
		if q := strings.IndexByte(s, ')'); q > i {
			i = strings.IndexAny(s[q:], "[<")
			if i < 0 {
				return s, true, nil
			}
			i += q
		}
	}
	rel, rest := strings.TrimSpace(s[:i]), strings.TrimSpace(s[i:])
	keep := true
	var groups [][]string
	sawArch := false
	for rest != "" {
		var open, close byte = rest[0], ']'
		if open == '<' {
			close = '>'
		} else if open != '[' {
			return "", false, fmt.Errorf("unexpected %q after the restrictions", truncate(rest))
		}
		j := strings.IndexByte(rest, close)
		if j < 0 {
			return "", false, fmt.Errorf("unclosed %c", open)
		}
		terms := strings.Fields(rest[1:j])
		rest = strings.TrimSpace(rest[j+1:])
		if len(terms) == 0 {
			return "", false, fmt.Errorf("empty restriction list %c%c", open, close)
		}
		if open == '[' {
			if sawArch || len(groups) > 0 {
				return "", false, fmt.Errorf("architecture list must come once, before the profiles")
			}
			sawArch = true
			ok, err := archListHolds(terms, arch)
			if err != nil {
				return "", false, err
			}
			keep = keep && ok
			continue
		}
		groups = append(groups, terms)
	}
	if len(groups) > 0 {
		any := false
		for _, g := range groups {
			all := true
			for _, t := range g {
				neg := strings.HasPrefix(t, "!")
				name := strings.TrimPrefix(t, "!")
				if name == "" || strings.ContainsAny(name, "!<>[]") {
					return "", false, fmt.Errorf("bad profile %q", t)
				}
				if slices.Contains(profiles, name) == neg {
					all = false
				}
			}
			any = any || all
		}
		keep = keep && any
	}
	return rel, keep, nil
}

// archListHolds evaluates "[a b]" (arch is one of them) or "[!a !b]"
// (arch is none of them); mixing the two is an error, as in dpkg.
func archListHolds(terms []string, arch string) (bool, error) {
	neg := strings.HasPrefix(terms[0], "!")
	match := false
	for _, t := range terms {
		if strings.HasPrefix(t, "!") != neg {
			return false, fmt.Errorf("architecture list [%s] mixes negated and plain entries", strings.Join(terms, " "))
		}
		a := strings.TrimPrefix(t, "!")
		if a == "" || strings.ContainsAny(a, "!<>[]()|,") {
			return false, fmt.Errorf("bad architecture %q", t)
		}
		match = match || ArchMatches(arch, a)
	}
	return match != neg, nil
}

// ArchMatches reports whether a Debian architecture of the Linux kernel
// (amd64, arm64, armhf…) matches an architecture name or wildcard: any,
// linux-any, any-CPU, linux-ARCH.
func ArchMatches(arch, pattern string) bool {
	cpu := arch
	switch arch {
	case "armhf", "armel":
		cpu = "arm"
	}
	switch pattern {
	case arch, "any", "linux-any", "any-" + cpu, "linux-" + arch:
		return true
	}
	return false
}
