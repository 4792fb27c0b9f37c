package beneath

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDirRefusesSymlinks(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "d", "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "l")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(root, "d", "lf")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "d", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	f, err := d.OpenRegular("d/f")
	if err != nil {
		t.Fatalf("a regular file beneath the tree: %v", err)
	}
	_ = f.Close()
	for _, rel := range []string{"l/secret", "d/lf", "../" + filepath.Base(outside) + "/secret"} {
		if _, err := d.OpenRegular(rel); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("OpenRegular(%q): want ErrUnsafePath, got %v", rel, err)
		}
	}
	if _, err := d.OpenDir("l"); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("OpenDir through a symlink: want ErrUnsafePath, got %v", err)
	}
	if _, err := d.OpenRegular("d/fifo"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("OpenRegular of a FIFO: want ErrNotRegular, got %v", err)
	}
	pfd, name, err := d.Parent("d/f")
	if err != nil || name != "f" {
		t.Fatalf("Parent: %d %q %v", pfd, name, err)
	}
	defer unix.Close(pfd)
	if !Exists(pfd, "f") || Exists(pfd, "nothing") {
		t.Error("Exists is wrong")
	}
	if l, err := Readlink(pfd, "lf", "d/lf"); err != nil || l != "f" {
		t.Errorf("Readlink: %q %v", l, err)
	}
	names, err := ReadDirNames(pfd)
	if err != nil || len(names) != 3 || names[0] != "f" || names[1] != "fifo" || names[2] != "lf" {
		t.Errorf("ReadDirNames: %q %v", names, err)
	}
}

func TestTargetAttrs(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "f")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(p, "user.gone", []byte("1"), 0); err != nil {
		t.Fatalf("the test needs a filesystem with user xattrs under %s: %v", root, err)
	}
	dfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	a, err := OpenTarget(dfd, "f", unix.S_IFREG, "file", "f")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	want := Attrs{UID: os.Getuid(), GID: os.Getgid(), Mode: 0o640, Xattrs: map[string]string{"user.a": "b"}, Mtime: 1000}
	if err := a.SetAttrs(&want, nil); err != nil {
		t.Fatal(err)
	}
	x, err := ReadXattrsAt(dfd, "f", "f", nil)
	if err != nil || len(x) != 1 || x["user.a"] != "b" {
		t.Errorf("xattrs after SetAttrs: %v %v", x, err)
	}
	if x, _ := ReadXattrsAt(dfd, "f", "f", func(string) bool { return false }); x != nil {
		t.Errorf("keep refusing all: %v", x)
	}
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil || st.Mode&0o7777 != 0o640 || st.Mtim.Sec != 1000 {
		t.Errorf("mode %o mtime %d %v", st.Mode&0o7777, st.Mtim.Sec, err)
	}
	if _, err := OpenTarget(dfd, "f", unix.S_IFDIR, "directory", "f"); !errors.Is(err, ErrUnsafePath) {
		t.Errorf("a file where a directory is wanted: want ErrUnsafePath, got %v", err)
	}
}
