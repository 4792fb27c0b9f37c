package debversion

import (
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
func Compare(a, b string) int {
	c := version.Compare(Split(a), Split(b))
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}
