package view_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/imagetar"
	"github.com/ingotfleet/ingot/images/view"
)

// memImage is a small image in memory: a merged /usr (bin → usr/bin), a
// hardlink, relative and absolute symlinks and one that climbs out.
func memImage() *view.Mem {
	files := map[string][]byte{"etc/motd": []byte("hello\n"), "usr/bin/sh": []byte("#!shell\n")}
	file := func(p string, mode uint32) images.Entry {
		return images.Entry{Path: p, Type: images.TypeFile, Mode: mode, Size: int64(len(files[p])), SHA256: images.Sum(files[p]), Mtime: 1700000000}
	}
	dir := func(p string) images.Entry { return images.Entry{Path: p, Type: images.TypeDir, Mode: 0o755} }
	link := func(p, target string) images.Entry {
		return images.Entry{Path: p, Type: images.TypeSymlink, Mode: 0o777, Link: target}
	}
	m := &images.Manifest{Entries: []images.Entry{
		dir("."), link("bin", "usr/bin"), dir("etc"), file("etc/motd", 0o644),
		{Path: "etc/motd.hard", Type: images.TypeHardlink, Link: "etc/motd"},
		link("etc/motd.abs", "/etc/motd"), link("etc/up", "../../../etc/motd"), link("etc/loop", "loop"),
		dir("usr"), dir("usr/bin"), file("usr/bin/sh", 0o755),
	}}
	m.Sort()
	return &view.Mem{Label: "mem", M: m, Files: files}
}

func TestFS(t *testing.T) {
	fsys := view.NewFS(context.Background(), memImage())
	for name, want := range map[string]string{
		"etc/motd": "hello\n", "etc/motd.hard": "hello\n", "etc/motd.abs": "hello\n", "etc/up": "hello\n", "usr/bin/sh": "#!shell\n",
	} {
		got, err := fs.ReadFile(fsys, name)
		if err != nil || string(got) != want {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	for name, want := range map[string]error{"etc/loop": nil, "bin/sh": fs.ErrNotExist, "../etc": fs.ErrInvalid, "etc/nope": fs.ErrNotExist} {
		if _, err := fsys.ReadFile(name); err == nil || (want != nil && !errors.Is(err, want)) {
			t.Errorf("ReadFile(%s): err = %v, want %v", name, err, want)
		}
	}
	ents, err := fs.ReadDir(fsys, "etc")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"loop", "motd", "motd.abs", "motd.hard", "up"}; !slices.Equal(names, want) {
		t.Errorf("ReadDir(etc) = %v, want %v", names, want)
	}
	if target, err := fs.ReadLink(fsys, "bin"); err != nil || target != "usr/bin" {
		t.Errorf("ReadLink(bin) = %q, %v", target, err)
	}
	if fi, err := fs.Lstat(fsys, "bin"); err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Errorf("Lstat(bin) = %v, %v", fi, err)
	}
	if fi, err := fs.Stat(fsys, "bin"); err != nil || !fi.IsDir() {
		t.Errorf("Stat(bin) = %v, %v; want the directory it links to", fi, err)
	}
	if fi, err := fs.Stat(fsys, "usr/bin/sh"); err != nil || fi.Mode() != 0o755 || fi.Size() != 8 || fi.ModTime().Unix() != 1700000000 {
		t.Errorf("Stat(usr/bin/sh) = %v, %v", fi, err)
	}
	var walked []string
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		walked = append(walked, p)
		return err
	})
	if want := "., bin, etc, etc/loop, etc/motd, etc/motd.abs, etc/motd.hard, etc/up, usr, usr/bin, usr/bin/sh"; err != nil || strings.Join(walked, ", ") != want {
		t.Errorf("WalkDir = %v, %v; want %s", walked, err, want)
	}
	f, err := fsys.Open("etc/motd")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(f); err != nil || string(b) != "hello\n" {
		t.Errorf("Open(etc/motd) reads %q, %v", b, err)
	}
}

// TestFSRefusesWrongSize: content that is not the size the manifest says
// is an error, not a short or long file.
func TestFSRefusesWrongSize(t *testing.T) {
	img := memImage()
	img.Files["etc/motd"] = []byte("hello, longer\n")
	if _, err := view.NewFS(context.Background(), img).ReadFile("etc/motd"); err == nil || !strings.Contains(err.Error(), "manifest says 6") {
		t.Errorf("err = %v, want one about the size", err)
	}
}

// readAll reads paths of v into a map.
func readAll(t *testing.T, v view.View, paths ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := v.ReadFiles(context.Background(), paths, func(p string, r io.Reader) error {
		b, err := io.ReadAll(r)
		got[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatalf("%s: ReadFiles: %v", v.Name(), err)
	}
	return got
}

// TestTarAndDir: the same image as a tar and as a directory reads the
// same as in memory; a tar keeps what it is asked to and forgets it.
func TestTarAndDir(t *testing.T) {
	ctx := context.Background()
	img := memImage()
	want := map[string]string{"etc/motd": "hello\n", "etc/motd.hard": "hello\n", "usr/bin/sh": "#!shell\n"}
	if got := readAll(t, img, "etc/motd", "etc/motd.hard", "usr/bin/sh"); !maps.Equal(got, want) {
		t.Fatalf("Mem: %v", got)
	}
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "img.tar")
	var buf bytes.Buffer
	err := imagetar.Write(ctx, &buf, img.M, func(_ context.Context, e *images.Entry) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(img.Files[e.Path])), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tarPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	tv, err := view.OpenTar(ctx, tarPath, func(p string) bool { return p == "etc/motd" })
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, tv, "etc/motd", "etc/motd.hard", "usr/bin/sh"); !maps.Equal(got, want) {
		t.Errorf("Tar: %v", got)
	}
	if tv.Manifest().Digest() != img.M.Digest() {
		t.Errorf("Tar manifest %s, want %s", tv.Manifest().Digest(), img.M.Digest())
	}
	// Kept content is served without the file; forgotten content is not.
	if err := os.Remove(tarPath); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, tv, "etc/motd"); got["etc/motd"] != "hello\n" {
		t.Errorf("kept content: %v", got)
	}
	tv.Forget(nil)
	if err := tv.ReadFiles(ctx, []string{"etc/motd"}, func(string, io.Reader) error { return nil }); err == nil {
		t.Error("forgotten content still read without the tar")
	}
	if err := tv.ReadFiles(ctx, []string{"etc"}, func(string, io.Reader) error { return nil }); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ReadFiles(etc): %v", err)
	}

	root := filepath.Join(dir, "root")
	for _, e := range img.M.Entries {
		p := filepath.Join(root, e.Path)
		switch e.Type {
		case images.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case images.TypeFile:
			err = os.WriteFile(p, img.Files[e.Path], os.FileMode(e.Mode))
		case images.TypeSymlink:
			err = os.Symlink(e.Link, p)
		case images.TypeHardlink:
			err = os.Link(filepath.Join(root, e.Link), p)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	dv, err := view.OpenDir(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer dv.Close()
	if got := readAll(t, dv, "etc/motd", "etc/motd.hard", "usr/bin/sh"); !maps.Equal(got, want) {
		t.Errorf("Dir: %v", got)
	}
	// Reads stay inside the directory: a symlink out of it is refused.
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "etc/escape")); err != nil {
		t.Fatal(err)
	}
	if err := dv.ReadFiles(ctx, []string{"etc/escape"}, func(string, io.Reader) error { return nil }); err == nil {
		t.Error("Dir read a symlink out of its directory")
	}
}
