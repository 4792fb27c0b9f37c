package pkgbuild

import (
	"strings"
	"testing"
)

func TestReduce(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		profiles []string
	}{
		{"debhelper-compat (= 13)", "debhelper-compat (= 13)", nil},
		{"a, b | c (>= 1.0), ", "a, b | c (>= 1.0)", nil},
		{"libc6-dev [amd64], libfoo [i386]", "libc6-dev", nil},
		{"x [!amd64], y [!i386 !arm64]", "y", nil},
		{"x [linux-any], y [any-amd64], z [hurd-any], w [any-i386]", "x, y", nil},
		{"python3 <!nocheck>, tests <nocheck>", "tests", []string{"nocheck"}},
		{"python3 <!nocheck>, tests <nocheck>", "python3", nil},
		{"a <stage1 cross> <nocheck>, b <stage1 cross>", "a", []string{"nocheck"}},
		{"a (>= 1) [amd64] <!nocheck> | b", "a (>= 1) | b", nil},
		{"a [i386] | b [amd64]", "b", nil},
		{"a [i386] | b [i386]", "", nil},
		{"a:any, b:native (>= 2)", "a:any, b:native (>= 2)", nil},
		{"", "", nil},
	} {
		got, err := Reduce(tc.in, "amd64", tc.profiles)
		if err != nil {
			t.Errorf("Reduce(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Reduce(%q, %v) = %q, want %q", tc.in, tc.profiles, got, tc.want)
		}
	}
}

func TestReduceRefuses(t *testing.T) {
	for _, in := range []string{
		"a [amd64 !i386]", // mixed negation
		"a [amd64",        // unclosed
		"a <>",            // empty profile list
		"a <nocheck> [amd64]",
		"a (>= 1",
		"a b",
		"a [amd64] junk",
	} {
		if got, err := Reduce(in, "amd64", nil); err == nil {
			t.Errorf("Reduce(%q) = %q, want an error", in, got)
		}
	}
}

func FuzzReduce(f *testing.F) {
	for _, s := range []string{"a (>= 1) [amd64] <!nocheck> | b", "x [!i386], y <stage1>", "a:any"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := Reduce(s, "amd64", Profiles)
		if err != nil {
			return
		}
		// The result is a plain relation field: reducing it again
		// changes nothing.
		again, err := Reduce(out, "amd64", Profiles)
		if err != nil || again != out {
			t.Fatalf("Reduce(%q) = %q, which reduces to %q, %v", s, out, again, err)
		}
		if strings.ContainsAny(out, "[]<>") && !strings.Contains(out, "<<") && !strings.Contains(out, ">>") && !strings.Contains(out, "<=") && !strings.Contains(out, ">=") {
			t.Fatalf("Reduce(%q) = %q keeps a restriction", s, out)
		}
	})
}
