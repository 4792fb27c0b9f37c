package glob

import "testing"

// TestDialect holds the package comment's claims; triggers' tests hold
// the rest of the matcher (they use it through triggers' names).
func TestDialect(t *testing.T) {
	for _, tc := range []struct {
		pat, path string
		want      bool
	}{
		{"/etc/ssh/*", "etc/ssh/sshd_config", true},
		{"etc/ssh/*", "/etc/ssh/sshd_config", true},
		{"/etc/ssh/", "/etc/ssh", true},
		{"/etc/*", "/etc/ssh/sshd_config", false}, // * never crosses a /
		{"/usr/share/doc/*/**", "/usr/share/doc/bash/copyright", true},
		{"/usr/share/doc/*/**", "/usr/share/doc/bash", true},
		{"/usr/share/doc/*/**", "/usr/share/doc", false},
		{"/**", "/", false}, // the root matches nothing
		{"/**", "/x", true},
	} {
		if got := MustCompile(tc.pat).Match(tc.path); got != tc.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tc.pat, tc.path, got, tc.want)
		}
	}
	for _, bad := range []string{"/a/b**", "/a/./b", "/a/../b", "/a//b", "/a/["} {
		if _, err := Compile(bad); err == nil {
			t.Errorf("Compile(%q) accepted it", bad)
		}
	}
}
