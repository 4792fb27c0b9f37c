package debtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// File is one path a test package installs.
type File struct {
	Mode    os.FileMode // permission bits (0644 when 0); os.ModeDir or os.ModeSymlink for those types
	Content string      // file content, or symlink target
}

// Package describes a test package.
type Package struct {
	Name, Version, Architecture string            // Architecture defaults to "all"
	Fields                      map[string]string // extra control fields: Depends, Pre-Depends, Essential, Priority, Multi-Arch…
	Files                       map[string]File   // by path ("usr/bin/x"); parents are made as needed
	Scripts                     map[string]string // preinst, postinst, prerm, postrm, triggers…: content
	Conffiles                   []string          // absolute paths, each must be in Files
	Compression                 string            // dpkg-deb -Z: gzip, xz (default), zstd, none
}

// Build writes p as a .deb in dir and returns its path
// (dir/name_version_arch.deb). It needs dpkg-deb.
func Build(t testing.TB, dir string, p Package) string {
	t.Helper()
	if p.Architecture == "" {
		p.Architecture = "all"
	}
	if p.Compression == "" {
		p.Compression = "xz"
	}
	tree := t.TempDir()
	ctl := filepath.Join(tree, "DEBIAN")
	must(t, os.MkdirAll(ctl, 0o755))
	var b strings.Builder
	fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: Test <test@example.org>\n", p.Name, p.Version, p.Architecture)
	keys := make([]string, 0, len(p.Fields))
	for k := range p.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, p.Fields[k])
	}
	if _, ok := p.Fields["Description"]; !ok {
		fmt.Fprintf(&b, "Description: test package %s\n", p.Name)
	}
	must(t, os.WriteFile(filepath.Join(ctl, "control"), []byte(b.String()), 0o644))
	for name, s := range p.Scripts {
		mode := os.FileMode(0o755)
		if name == "triggers" || name == "shlibs" || name == "templates" {
			mode = 0o644
		}
		must(t, os.WriteFile(filepath.Join(ctl, name), []byte(s), mode))
	}
	if len(p.Conffiles) > 0 {
		must(t, os.WriteFile(filepath.Join(ctl, "conffiles"), []byte(strings.Join(p.Conffiles, "\n")+"\n"), 0o644))
	}
	paths := make([]string, 0, len(p.Files))
	for k := range p.Files {
		paths = append(paths, k)
	}
	sort.Strings(paths)
	for _, rel := range paths {
		f := p.Files[rel]
		full := filepath.Join(tree, rel)
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		switch {
		case f.Mode&os.ModeDir != 0:
			must(t, os.MkdirAll(full, 0o755))
			if perm := f.Mode.Perm(); perm != 0 {
				must(t, os.Chmod(full, f.Mode&(os.ModePerm|os.ModeSticky|os.ModeSetgid|os.ModeSetuid)))
			}
		case f.Mode&os.ModeSymlink != 0:
			must(t, os.Symlink(f.Content, full))
		default:
			perm := f.Mode.Perm()
			if perm == 0 {
				perm = 0o644
			}
			must(t, os.WriteFile(full, []byte(f.Content), perm))
			must(t, os.Chmod(full, perm|f.Mode&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)))
		}
	}
	out := filepath.Join(dir, fmt.Sprintf("%s_%s_%s.deb", p.Name, strings.ReplaceAll(p.Version, ":", "%3a"), p.Architecture))
	cmd := exec.Command("dpkg-deb", "--root-owner-group", "-Z"+p.Compression, "--build", tree, out)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build %s: %v\n%s", p.Name, err, msg)
	}
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
