package builder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/deb"
)

func TestDependencyOrder(t *testing.T) {
	ctl := func(name, fields string) *deb.Control {
		ps, err := deb.ParseParagraphs(strings.NewReader("Package: "+name+"\n"+fields), name)
		if err != nil {
			t.Fatal(err)
		}
		return &deb.Control{Paragraph: ps[0]}
	}
	tests := []struct {
		name string
		pkgs []*deb.Control
		want string
	}{
		{"chain", []*deb.Control{ctl("c", "Depends: b\n"), ctl("b", "Pre-Depends: a (>= 1)\n"), ctl("a", "")}, "a b c"},
		{"alternatives use the first present", []*deb.Control{ctl("x", "Depends: missing | z\n"), ctl("z", "Depends: y\n"), ctl("y", "")}, "y z x"},
		{"virtual through Provides", []*deb.Control{ctl("app", "Depends: mail-transport-agent\n"), ctl("mta", "Provides: mail-transport-agent\n")}, "mta app"},
		{"cycle broken by name", []*deb.Control{ctl("q", "Depends: p\n"), ctl("p", "Depends: q\n"), ctl("o", "Depends: p:any\n")}, "p o q"},
		{"ties by name", []*deb.Control{ctl("b", ""), ctl("c", ""), ctl("a", "")}, "a b c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			order, err := dependencyOrder(tt.pkgs)
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range order {
				got = append(got, tt.pkgs[i].Package())
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("order = %v, want %s", got, tt.want)
			}
		})
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		glob, path string
		want       bool
	}{
		{"/usr/share/doc/*", "/usr/share/doc/bash", true},
		{"/usr/share/doc/*", "/usr/share/doc/bash/copyright", true},
		{"/usr/share/doc/*", "/usr/share/doc", false},
		{"/usr/share/doc/*/copyright", "/usr/share/doc/bash/copyright", true},
		{"/usr/share/doc/*/copyright", "/usr/share/doc/bash/README", false},
		{"/usr/share/man/man*", "/usr/share/man/man1/ls.1.gz", false},
		{"/usr/share/man/man*", "/usr/share/man/man1", true},
		{"/etc/*.conf", "/etc/a.conf", true},
		{"/etc/*.conf", "/etc/sub/a.conf", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.glob, tt.path); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.glob, tt.path, got, tt.want)
		}
	}
}

func TestVerifyRefusesTamperedPackage(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x_1_all.deb")
	os.WriteFile(p, []byte("tampered"), 0o644)
	pkg := Package{Name: "x", Version: "1", Architecture: "all", Path: p, Size: 8,
		SHA256: "0000000000000000000000000000000000000000000000000000000000000000"}
	err := verifyAll(context.Background(), []Package{pkg}, 2, func(Event) {})
	if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "x_1_all") || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v", err)
	}
}
