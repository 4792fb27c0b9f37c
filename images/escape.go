package images

import (
	"fmt"
	"strings"
)

// needsEscape reports whether byte c is written as a \ooo octal escape in a
// manifest: anything but printable ASCII, the escape character itself, '#'
// (mtree comments), '=' (which ends a keyword: an xattr name holding one
// would otherwise read back as a shorter name with another value) and the
// glob characters that mtree would otherwise treat as a pattern.
func needsEscape(c byte) bool {
	switch c {
	case '\\', '#', '*', '?', '[', '=':
		return true
	}
	return c <= ' ' || c >= 0x7f
}

// Escape returns s with every byte that needsEscape written as \ooo, so the
// result is printable ASCII without spaces. It is how manifests write paths,
// link targets, names and xattr names; NetBSD mtree and libarchive read it.
func Escape(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 3*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			b.WriteByte('\\')
			b.WriteByte('0' + c>>6)
			b.WriteByte('0' + (c>>3)&7)
			b.WriteByte('0' + c&7)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Unescape is the inverse of Escape. It accepts any \ooo escape (not only
// the ones Escape writes) and refuses a lone backslash.
func Unescape(s string) (string, error) {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("truncated escape at byte %d of %q", i, s)
		}
		v := 0
		for _, d := range []byte(s[i+1 : i+4]) {
			if d < '0' || d > '7' {
				return "", fmt.Errorf("bad escape %q in %q: want \\ and three octal digits", s[i:i+4], s)
			}
			v = v<<3 | int(d-'0')
		}
		if v > 0xff {
			return "", fmt.Errorf("bad escape %q in %q: over \\377", s[i:i+4], s)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}
