package glob

import "testing"

// TestDialect holds the package comment's claims.
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

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pat  string
		path string
		want bool
	}{
		{"etc/hostname", "etc/hostname", true},
		{"/etc/hostname", "etc/hostname", true},
		{"/etc/hostname", "/etc/hostname", true},
		{"etc/hostname", "etc/hostname2", false},
		{"etc/ssh/ssh_host_*", "etc/ssh/ssh_host_rsa_key", true},
		{"etc/ssh/ssh_host_*", "etc/ssh/sshd_config", false},
		{"etc/ssh/ssh_host_*", "etc/ssh/ssh_host_x/y", false},
		{"var/log/**", "var/log", true},
		{"var/log/**", "var/log/apt/history.log", true},
		{"var/log/**", "var/logs", false},
		{"var/log/**", "var", false},
		{"**", "anything/at/all", true},
		{"usr/**/*.so*", "usr/lib/x86_64-linux-gnu/libc.so.6", true},
		{"usr/**/*.so*", "usr/libc.so", true},
		{"usr/**/*.so*", "usr/lib/libc.a", false},
		{"**/*.service", "lib/systemd/system/ssh.service", true},
		{"**/*.service", "ssh.service", true},
		{"a/**/b/**/c", "a/b/c", true},
		{"a/**/b/**/c", "a/x/y/b/z/c", true},
		{"a/**/b/**/c", "a/x/y/z/c", false},
		{"a/**/**/c", "a/c", true},
		{"boot/**", "boot/vmlinuz", true},
		{"etc/[ab]*", "etc/apt", true},
		{"etc/[ab]*", "etc/cron", false},
		{"etc/?", "etc/x", true},
		{"x", ".", false},
	}
	for _, tt := range tests {
		t.Run(tt.pat+"~"+tt.path, func(t *testing.T) {
			g, err := Compile(tt.pat)
			if err != nil {
				t.Fatal(err)
			}
			if got := g.Match(tt.path); got != tt.want {
				t.Errorf("%q.Match(%q) = %v, want %v", tt.pat, tt.path, got, tt.want)
			}
		})
	}
}

func TestGlobRejects(t *testing.T) {
	for _, p := range []string{"", "/", "a//b", "a/../b", "a/**x", "a/[", "./a"} {
		if _, err := Compile(p); err == nil {
			t.Errorf("Compile(%q) accepted a bad pattern", p)
		}
	}
}

func TestGlobSetCovers(t *testing.T) {
	s, err := CompileSet([]string{"var/log/**", "etc/hostname", "home/*/**"})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"var/log": true, "var/log/apt": true, "var": false, "etc/hostname": false,
		"home/alice": true, "home": false,
	} {
		if got := s.Covers(p); got != want {
			t.Errorf("Covers(%q) = %v, want %v", p, got, want)
		}
	}
}

func FuzzGlob(f *testing.F) {
	f.Add("usr/**/*.so*", "usr/lib/libc.so.6")
	f.Add("a/**/b/**/c", "a/x/b/y/c")
	f.Fuzz(func(t *testing.T, pat, p string) {
		g, err := Compile(pat)
		if err != nil {
			return
		}
		g.Match(p)
	})
}
