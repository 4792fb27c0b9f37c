package glob

import (
	"fmt"
	"path"
	"strings"
)

// Glob is a compiled path pattern (see the package comment).
type Glob struct {
	pattern string
	segs    []string
}

// Compile checks pattern and returns it compiled.
func Compile(pattern string) (Glob, error) {
	p := strings.TrimPrefix(pattern, "/")
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return Glob{}, fmt.Errorf("empty path glob %q", pattern)
	}
	segs := strings.Split(p, "/")
	for _, s := range segs {
		if s == "" || s == "." || s == ".." {
			return Glob{}, fmt.Errorf("path glob %q: bad segment %q", pattern, s)
		}
		if s == "**" {
			continue
		}
		if strings.Contains(s, "**") {
			return Glob{}, fmt.Errorf("path glob %q: ** must be a whole segment", pattern)
		}
		if _, err := path.Match(s, ""); err != nil {
			return Glob{}, fmt.Errorf("path glob %q: %w", pattern, err)
		}
	}
	return Glob{pattern: pattern, segs: segs}, nil
}

// MustCompile is Compile for patterns known to be good.
func MustCompile(pattern string) Glob {
	g, err := Compile(pattern)
	if err != nil {
		panic(err)
	}
	return g
}

func (g Glob) String() string { return g.pattern }

// Match reports whether the root-relative path p ("etc/ssh/sshd_config",
// a leading "/" ignored) matches the glob.
func (g Glob) Match(p string) bool {
	p = strings.TrimPrefix(p, "/")
	if p == "" || p == "." {
		return false
	}
	return matchSegs(g.segs, strings.Split(p, "/"))
}

func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			// Collapse runs of "**"; then try every split point.
			for len(pat) > 0 && pat[0] == "**" {
				pat = pat[1:]
			}
			if len(pat) == 0 {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if matchSegs(pat, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// Set is a list of globs; a path matches the set when it matches any.
type Set []Glob

// CompileSet compiles every pattern.
func CompileSet(patterns []string) (Set, error) {
	s := make(Set, 0, len(patterns))
	for _, p := range patterns {
		g, err := Compile(p)
		if err != nil {
			return nil, err
		}
		s = append(s, g)
	}
	return s, nil
}

// Match reports whether p matches any glob of the set.
func (s Set) Match(p string) bool {
	for _, g := range s {
		if g.Match(p) {
			return true
		}
	}
	return false
}

// Covers reports whether some glob matches p or every path under it: the
// glob ends in "**" and its prefix matches p. A sync uses it to skip whole
// local directories without walking them.
func (s Set) Covers(p string) bool {
	for _, g := range s {
		n := len(g.segs)
		if n > 0 && g.segs[n-1] == "**" && g.Match(p) {
			// "a/**" matches p; anything below p matches too, since
			// the trailing ** absorbs the extra segments.
			return true
		}
	}
	return false
}
