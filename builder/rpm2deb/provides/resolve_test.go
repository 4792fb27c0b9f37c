package provides_test

import (
	"context"
	"testing"

	"github.com/ingotfleet/ingot/builder/rpm2deb/provides"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/view"
)

// TestResolverOnMemoryImage resolves against an image held in memory (no
// root, no disk): a merged /usr, where dash's file list names
// /usr/bin/dash and the question asks for /bin/dash; a soname from
// libc6's shlibs; a package whose files are gone does not count.
func TestResolverOnMemoryImage(t *testing.T) {
	files := map[string][]byte{
		"var/lib/dpkg/status": []byte("Package: dash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.5.12-2\nEssential: yes\n\n" +
			"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\nMulti-Arch: same\n\n" +
			"Package: gone\nStatus: deinstall ok config-files\nArchitecture: all\nVersion: 1\n"),
		"var/lib/dpkg/info/dash.list":          []byte("/.\n/usr\n/usr/bin\n/usr/bin/dash\n"),
		"var/lib/dpkg/info/libc6:amd64.list":   []byte("/.\n/usr\n/usr/lib\n/usr/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu/libc.so.6\n"),
		"var/lib/dpkg/info/libc6:amd64.shlibs": []byte("libc 6 libc6 (>= 2.36)\n"),
		"var/lib/dpkg/info/gone.list":          []byte("/.\n/usr/bin/gone\n"),
	}
	m := &images.Manifest{Entries: []images.Entry{
		{Path: ".", Type: images.TypeDir, Mode: 0o755},
		{Path: "bin", Type: images.TypeSymlink, Mode: 0o777, Link: "usr/bin"},
		{Path: "usr", Type: images.TypeDir, Mode: 0o755},
		{Path: "usr/bin", Type: images.TypeDir, Mode: 0o755},
		{Path: "var", Type: images.TypeDir, Mode: 0o755},
		{Path: "var/lib", Type: images.TypeDir, Mode: 0o755},
		{Path: "var/lib/dpkg", Type: images.TypeDir, Mode: 0o755},
		{Path: "var/lib/dpkg/info", Type: images.TypeDir, Mode: 0o755},
	}}
	for p, c := range files {
		m.Entries = append(m.Entries, images.Entry{Path: p, Type: images.TypeFile, Mode: 0o644, Size: int64(len(c)), SHA256: images.Sum(c)})
	}
	m.Sort()
	img := &view.Mem{Label: "mem", M: m, Files: files}
	r := provides.NewDpkgResolver(view.NewFS(context.Background(), img), "mem")
	for p, want := range map[string]string{"/bin/dash": "dash", "/usr/bin/dash": "dash", "/usr/bin/gone": "", "/bin/nothing": ""} {
		if got, err := r.FileOwner(p); err != nil || got != want {
			t.Errorf("FileOwner(%s) = %q, %v; want %q", p, got, err, want)
		}
	}
	if got, err := r.Soname("libc.so.6", nil, true); err != nil || got != "libc6 (>= 2.36)" {
		t.Errorf("Soname(libc.so.6) = %q, %v", got, err)
	}
	if !r.Essential("dash") || r.Essential("libc6") {
		t.Errorf("Essential: dash %v, libc6 %v", r.Essential("dash"), r.Essential("libc6"))
	}
}
