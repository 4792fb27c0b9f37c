package dpkgdb

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/deb"
)

func control(t *testing.T, text string, files map[string]string) *deb.Control {
	t.Helper()
	ps, err := deb.ParseParagraphs(strings.NewReader(text), "control")
	if err != nil {
		t.Fatal(err)
	}
	c := &deb.Control{Paragraph: ps[0], Files: map[string]deb.ControlFile{"control": {Mode: 0o644, Data: []byte(text)}}}
	for n, d := range files {
		mode := int64(0o644)
		if strings.HasSuffix(n, "inst") || strings.HasSuffix(n, "rm") {
			mode = 0o755
		}
		c.Files[n] = deb.ControlFile{Mode: mode, Data: []byte(d)}
	}
	return c
}

func TestWriteAndLoad(t *testing.T) {
	root := t.TempDir()
	pkgs := []*Package{
		{Control: control(t, "Package: libc-bin\nVersion: 2.36\nArchitecture: amd64\nMaintainer: M <m@x>\nPriority: required\nEssential: yes\nDescription: x\n long\n",
			map[string]string{"triggers": "interest-await ldconfig\n", "postinst": "#!/bin/sh\n", "conffiles": "/etc/ld.so.conf\n"}),
			Paths: []string{"/.", "/etc", "/etc/ld.so.conf"}, MD5sums: []byte("00  sbin/ldconfig\n")},
		{Control: control(t, "Package: libfoo1\nVersion: 1:2-3\nArchitecture: amd64\nMulti-Arch: same\nDescription: y\n",
			map[string]string{"triggers": "activate-noawait ldconfig\n"}),
			Paths: []string{"/.", "/usr", "/usr/lib/libfoo.so.1"}},
		{Control: control(t, "Package: debianutils\nVersion: 5\nArchitecture: amd64\nDescription: z\n",
			map[string]string{"triggers": "interest-noawait /usr/share/debianutils/shells.d\n"}),
			Paths: []string{"/."}},
	}
	if err := Write(context.Background(), root, "amd64", pkgs); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, Dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	status := read("status")
	wantFirst := "Package: libc-bin\nEssential: yes\nStatus: install ok unpacked\nPriority: required\nMaintainer: M <m@x>\nArchitecture: amd64\nVersion: 2.36\nConffiles:\n /etc/ld.so.conf newconffile\nDescription: x\n long\n\n"
	if !strings.HasPrefix(status, wantFirst) {
		t.Errorf("status starts\n%q\nwant\n%q", status[:min(len(status), len(wantFirst))], wantFirst)
	}
	for p, want := range map[string]string{
		"info/libc-bin.list":      "/.\n/etc\n/etc/ld.so.conf\n",
		"info/libc-bin.md5sums":   "00  sbin/ldconfig\n",
		"info/libc-bin.conffiles": "/etc/ld.so.conf\n",
		"info/libfoo1:amd64.list": "/.\n/usr\n/usr/lib/libfoo.so.1\n",
		"triggers/ldconfig":       "libc-bin\n",
		"triggers/File":           "/usr/share/debianutils/shells.d debianutils/noawait\n",
		"arch":                    "amd64\n",
		"info/format":             "1\n",
	} {
		if got := read(p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, Dir, "info/libc-bin.postinst")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("postinst mode: %v %v", fi.Mode(), err)
	}
	db, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(db.Packages) != 3 || db.Lookup("libfoo1").InfoName() != "libfoo1:amd64" || db.Lookup("libfoo1").Version != "1:2-3" {
		t.Fatalf("loaded %+v", db.Packages)
	}
	owners, err := db.Owners()
	if err != nil {
		t.Fatal(err)
	}
	if got := owners["/usr/lib/libfoo.so.1"]; len(got) != 1 || got[0] != "libfoo1" {
		t.Errorf("owners = %v", got)
	}
	if err := Write(context.Background(), root, "amd64", pkgs); err == nil {
		t.Error("Write over an existing database succeeded")
	}
}

func TestLoadRefusesBadStatus(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, Dir), 0o755)
	os.WriteFile(filepath.Join(root, Dir, "status"), []byte("Package: a\nVersion: 1\n\nbroken line\n"), 0o644)
	if _, err := Load(root); err == nil || !strings.Contains(err.Error(), "status:4") {
		t.Fatalf("err = %v, want one naming status:4", err)
	}
}

// TestOpenOwners reads a database through a ReadFileFunc (as the differ
// and rpm2deb do over an image): only packages whose files are on disk
// own paths, a list is found under either of dpkg's names, and every owner
// appears once.
func TestOpenOwners(t *testing.T) {
	files := map[string]string{
		StatusPath: "Package: a\nStatus: install ok installed\nArchitecture: amd64\n\n" +
			"Package: b\nStatus: install ok half-configured\nArchitecture: amd64\nMulti-Arch: same\n\n" +
			"Package: b\nStatus: install ok installed\nArchitecture: i386\nMulti-Arch: same\n\n" +
			"Package: gone\nStatus: deinstall ok config-files\nArchitecture: all\n",
		Dir + "/info/a:amd64.list":   "/.\n/usr\n/usr/bin/a\n",
		Dir + "/info/b:amd64.list":   "/.\n/usr\n/usr/lib/b.so\n",
		Dir + "/info/b:i386.list":    "/.\n/usr\n/usr/lib/b.so\n",
		Dir + "/info/gone.list":      "/.\n/etc/gone.conf\n",
		Dir + "/info/unrelated.list": "/.\n/usr/bin/x\n",
	}
	db, err := Open(func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}, "img")
	if err != nil {
		t.Fatal(err)
	}
	owners, err := db.Owners()
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"/.": "a b", "/usr": "a b", "/usr/bin/a": "a", "/usr/lib/b.so": "b", "/etc/gone.conf": "", "/usr/bin/x": ""} {
		if got := strings.Join(owners[p], " "); got != want {
			t.Errorf("owners of %s = %q, want %q", p, got, want)
		}
	}
	if _, err := ParseStatus([]byte("Package: a\nStatus: installed\n"), "s"); err == nil || !strings.Contains(err.Error(), "s:1: package a: malformed Status") {
		t.Errorf("ParseStatus with a one-word Status: err = %v", err)
	}
}

// TestRemovePaths: removed paths leave the file lists and md5sums, other
// lines and other files stay byte for byte, modes are kept.
func TestRemovePaths(t *testing.T) {
	root := t.TempDir()
	info := filepath.Join(root, Dir, "info")
	if err := os.MkdirAll(info, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"a.list":     "/.\n/usr\n/usr/share/doc/a\n/usr/share/doc/a/copyright\n/usr/bin/a\n",
		"a.md5sums":  "00  usr/share/doc/a/copyright\n11  usr/bin/a\n",
		"a.postinst": "/usr/share/doc/a/copyright\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(info, n), []byte(c), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemovePaths(root, map[string]bool{"/usr/share/doc/a": true, "/usr/share/doc/a/copyright": true}); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]string{"a.list": "/.\n/usr\n/usr/bin/a\n", "a.md5sums": "11  usr/bin/a\n", "a.postinst": files["a.postinst"]} {
		p := filepath.Join(info, n)
		got, err := os.ReadFile(p)
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", n, got, err, want)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s mode: %v %v", n, fi.Mode(), err)
		}
	}
}
