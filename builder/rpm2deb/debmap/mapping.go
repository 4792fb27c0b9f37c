package debmap

import (
	"fmt"
	"strings"
)

// DebName maps an RPM package name to a Debian one: lowercase, every
// character outside [a-z0-9+.-] turned into '-', and a leading character
// that is not alphanumeric prefixed with "0" — Debian names start with an
// alphanumeric and have at least two characters.
func DebName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '+', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := b.String()
	if out == "" || !isAlnum(out[0]) {
		out = "0" + out
	}
	if len(out) < 2 {
		out += "0"
	}
	return out
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// debVersionPart maps an RPM version or release string to Debian's
// alphabet. rpm treats every run of characters outside [A-Za-z0-9~^] as one
// separator, all of them equal, so each becomes '.' (which keeps rpm's
// order against versions that use '.'). '~' means the same in both. '^'
// (rpm ≥ 4.15: after the end of the string, before anything else) becomes
// '+', which dpkg also sorts after the end of the string and before '.';
// only a letter at the same place orders differently (dpkg sorts letters
// before '+'). It returns the mapped string and a note when it changed.
func debVersionPart(s string) (string, string) {
	var b strings.Builder
	changed := false
	caret := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlnum(c), c == '~', c == '.':
			b.WriteByte(c)
		case c == '^':
			b.WriteByte('+')
			changed, caret = true, true
		default:
			b.WriteByte('.')
			changed = true
		}
	}
	note := ""
	if changed {
		note = "separators other than '.' mapped to '.'"
		if caret {
			note = "'^' mapped to '+' (dpkg sorts a letter in its place lower; rpm sorts it higher)"
		}
	}
	return b.String(), note
}

// DebVersion is [epoch:]version[-release] in Debian's alphabet; notes say
// what had to change. An upstream version that does not start with a
// digit gets a "0" prefix, as dpkg requires (it orders the same among
// such versions).
func DebVersion(epoch int64, hasEpoch bool, version, release string) (string, []string) {
	var notes []string
	v, n := debVersionPart(version)
	if n != "" {
		notes = append(notes, "version "+version+": "+n)
	}
	if v == "" || !isDigit(v[0]) {
		notes = append(notes, fmt.Sprintf("version %q does not start with a digit: prefixed with 0", version))
		v = "0" + v
	}
	out := v
	if release != "" {
		r, n := debVersionPart(release)
		if n != "" {
			notes = append(notes, "release "+release+": "+n)
		}
		out += "-" + r
	}
	if hasEpoch && epoch > 0 {
		out = fmt.Sprintf("%d:%s", epoch, out)
	}
	return out, notes
}

// SplitEVR splits an RPM [epoch:]version[-release] string.
func SplitEVR(s string) (epoch int64, hasEpoch bool, version, release string) {
	if i := strings.IndexByte(s, ':'); i > 0 {
		var e int64
		if _, err := fmt.Sscanf(s[:i], "%d", &e); err == nil && e >= 0 {
			epoch, hasEpoch = e, true
			s = s[i+1:]
		}
	}
	version = s
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		version, release = s[:i], s[i+1:]
	}
	return
}

// DebArch maps an RPM architecture to a Debian one.
func DebArch(a string) (string, bool) {
	switch a {
	case "x86_64", "amd64", "em64t", "ia32e":
		return "amd64", true
	case "i386", "i486", "i586", "i686", "athlon", "pentium3", "pentium4", "geode":
		return "i386", true
	case "noarch":
		return "all", true
	case "aarch64", "arm64":
		return "arm64", true
	case "armv7hl", "armv7hnl", "armhfp":
		return "armhf", true
	case "armv5tel", "armv5tejl", "armv6l", "armv7l":
		return "armel", true
	case "ppc64le":
		return "ppc64el", true
	case "ppc64", "ppc64p7":
		return "ppc64", true
	case "ppc":
		return "powerpc", true
	case "s390x":
		return "s390x", true
	case "riscv64":
		return "riscv64", true
	case "mips64el":
		return "mips64el", true
	case "mipsel":
		return "mipsel", true
	case "loongarch64":
		return "loong64", true
	case "sparc64":
		return "sparc64", true
	case "alpha":
		return "alpha", true
	case "ia64":
		return "ia64", true
	}
	return "", false
}

// DebSection maps an RPM Group ("System Environment/Daemons") to a Debian
// section; ok is false when it fell back to "misc".
func DebSection(group string) (string, bool) {
	g := strings.ToLower(group)
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(g, w) {
				return true
			}
		}
		return false
	}
	switch {
	case has("libraries") && has("development"):
		return "libdevel", true
	case has("libraries", "libs"):
		return "libs", true
	case has("kernel"):
		return "kernel", true
	case has("mail"):
		return "mail", true
	case has("news"):
		return "news", true
	case has("editors"):
		return "editors", true
	case has("database"):
		return "database", true
	case has("documentation", "/doc"):
		return "doc", true
	case has("games", "amusements"):
		return "games", true
	case has("sound", "audio"):
		return "sound", true
	case has("video", "multimedia"):
		return "video", true
	case has("graphics"):
		return "graphics", true
	case has("fonts"):
		return "fonts", true
	case has("perl"):
		return "perl", true
	case has("python"):
		return "python", true
	case has("ruby"):
		return "ruby", true
	case has("java"):
		return "java", true
	case has("shells"):
		return "shells", true
	case has("publishing", "text"):
		return "text", true
	case has("x11", "user interface", "desktop"):
		return "x11", true
	case has("www", "web"):
		return "web", true
	case has("development/languages", "interpreters"):
		return "interpreters", true
	case has("development", "tools/dev"):
		return "devel", true
	case has("internet", "network", "communications"):
		return "net", true
	case has("daemons", "system", "admin", "base"):
		return "admin", true
	case has("archiving", "file", "utilities", "utils", "tools"):
		return "utils", true
	case has("science", "engineering"):
		return "science", true
	}
	return "misc", false
}
