package debversion

import (
	"fmt"
	"strconv"
	"strings"

	"pault.ag/go/debian/version"
)

// Split reads [epoch:]upstream[-revision] as dpkg does, without
// validating it: the epoch is what precedes the first ':' (0 if that is
// not a number), the revision what follows the last '-'. Use
// version.Parse where a malformed version must be refused.
func Split(s string) version.Version {
	var v version.Version
	if e, rest, ok := strings.Cut(s, ":"); ok {
		if n, err := strconv.ParseUint(e, 10, 32); err == nil {
			v.Epoch = uint(n)
		}
		s = rest
	}
	v.Version = s
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		v.Version, v.Revision = s[:i], s[i+1:]
	}
	return v
}

// Compare orders two Debian version strings as dpkg does: -1, 0 or 1.
// It does not validate them (see Split).
func Compare(a, b string) int { return sign(version.Compare(Split(a), Split(b))) }

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// Parse reads a version the way the differ and review accept one: not
// empty, no white space, a numeric epoch before the first ':', a
// non-empty upstream part and, after the last '-', a non-empty revision.
// It stays hand-written rather than pault.ag/go/debian/version.Parse:
// that trims surrounding blanks (so " 1.0" would pass) and refuses
// upstream versions that do not start with a digit, which dpkg only warns
// about, so an image dpkg installed would be refused.
func Parse(s string) (version.Version, error) {
	var v version.Version
	if s == "" || strings.ContainsAny(s, " \t\n") {
		return v, fmt.Errorf("version %q: empty or has white space", s)
	}
	rest := s
	if e, r, ok := strings.Cut(s, ":"); ok {
		n, err := strconv.Atoi(e)
		if err != nil || n < 0 {
			return v, fmt.Errorf("version %q: bad epoch %q", s, e)
		}
		v.Epoch, rest = uint(n), r
	}
	v.Version = rest
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		v.Version, v.Revision = rest[:i], rest[i+1:]
		if v.Revision == "" {
			return v, fmt.Errorf("version %q: empty revision", s)
		}
	}
	if v.Version == "" {
		return v, fmt.Errorf("version %q: empty upstream version", s)
	}
	return v, nil
}

// CompareStrict orders two versions as dpkg --compare-versions does, -1,
// 0 or 1, with a version Parse refuses sorting before every one it
// accepts and refused ones ordered by bytes (so the order is total).
func CompareStrict(a, b string) int {
	va, erra := Parse(a)
	vb, errb := Parse(b)
	switch {
	case erra != nil && errb != nil:
		return strings.Compare(a, b)
	case erra != nil:
		return -1
	case errb != nil:
		return 1
	}
	return sign(version.Compare(va, vb))
}
