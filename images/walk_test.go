package images

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/internal/testenv"
	"golang.org/x/sys/unix"
)

// capNetRaw is a security.capability value (v2, cap_net_raw+ep).
const capNetRaw = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// makeTree builds a small root with every type of path in dir, owned by
// users of its own etc/passwd, and returns dir. Needs root.
func makeTree(t *testing.T) string {
	t.Helper()
	testenv.RequireRoot(t)
	root := filepath.Join(t.TempDir(), "root")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mkdir := func(p string, mode uint32) {
		must(os.Mkdir(filepath.Join(root, p), 0o700))
		must(unix.Chmod(filepath.Join(root, p), mode)) // past the umask, with setuid/sticky bits
	}
	write := func(p, s string, mode uint32) {
		must(os.WriteFile(filepath.Join(root, p), []byte(s), 0o600))
		must(unix.Chmod(filepath.Join(root, p), mode))
	}
	must(os.Mkdir(root, 0o755))
	mkdir("etc", 0o755)
	write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\ningot:x:4242:4243::/home/ingot:/bin/sh\n", 0o644)
	write("etc/group", "root:x:0:\ningot:x:4243:\n", 0o644)
	// A name that sorts first shares etc/passwd's inode: etc/passwd is a
	// hardlink in the manifest, and still gives the names.
	must(os.Link(filepath.Join(root, "etc/passwd"), filepath.Join(root, "etc/.pwd.bak")))
	mkdir("home", 0o755)
	mkdir("home/ingot", 0o700)
	must(os.Chown(filepath.Join(root, "home/ingot"), 4242, 4243))
	write("home/ingot/notes", "owned by a user the host may not have\n", 0o600)
	must(os.Chown(filepath.Join(root, "home/ingot/notes"), 4242, 4243))
	must(unix.Chmod(filepath.Join(root, "home/ingot/notes"), 0o6750)) // chown clears setuid: set it after
	write("home/ingot/stranger", "uid with no name\n", 0o640)
	must(os.Chown(filepath.Join(root, "home/ingot/stranger"), 777, 778))
	mkdir("usr", 0o755)
	mkdir("usr/bin", 0o755)
	write("usr/bin/zz", "#!/bin/sh\necho shared\n", 0o755)
	must(os.Link(filepath.Join(root, "usr/bin/zz"), filepath.Join(root, "usr/bin/aa")))
	must(os.Link(filepath.Join(root, "usr/bin/zz"), filepath.Join(root, "usr/bin/mm")))
	write("usr/bin/ping", strings.Repeat("\x7fELF", 1000), 0o4755)
	must(unix.Lsetxattr(filepath.Join(root, "usr/bin/ping"), XattrCapability, []byte(capNetRaw), 0))
	must(unix.Lsetxattr(filepath.Join(root, "usr/bin/ping"), "user.note", []byte("a\x00binary\xffvalue"), 0))
	must(os.Symlink("usr/bin", filepath.Join(root, "bin")))
	must(os.Symlink("/etc", filepath.Join(root, "hostetc"))) // never followed
	must(os.Symlink("does/not/exist", filepath.Join(root, "dangling")))
	mkdir("dev", 0o755)
	must(unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Mknod(filepath.Join(root, "dev/sda"), unix.S_IFBLK|0o660, int(unix.Mkdev(8, 0))))
	must(unix.Mkfifo(filepath.Join(root, "dev/initctl"), 0o600))
	mkdir("tmp", 0o1777)
	write("tmp/a-b", "sorts before tmp/a/", 0o644)
	mkdir("tmp/a", 0o755)
	write("tmp/a/x", "", 0o644)
	write("caf\xc3\xa9 \\#*?[", "odd name", 0o644)
	// Fixed mtimes, children first, so the directories keep theirs.
	var paths []string
	filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error { paths = append(paths, p); return nil })
	slices.Reverse(paths)
	for i, p := range paths {
		ts := []unix.Timespec{unix.NsecToTimespec(0), {Sec: int64(1600000000 + i), Nsec: 123456789}}
		must(unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
	}
	return root
}

func TestWalkDir(t *testing.T) {
	root := makeTree(t)
	var order []string
	m, err := WalkDir(context.Background(), root, WalkOptions{}, func(e *Entry, r io.Reader) error {
		order = append(order, e.Path)
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(p string, f func(e *Entry) bool, what string) {
		t.Helper()
		e := m.Lookup(p)
		if e == nil || !f(e) {
			t.Errorf("%s: want %s, got %+v", p, what, e)
		}
	}
	check("usr/bin/aa", func(e *Entry) bool { return e.Type == TypeFile && e.SHA256 == Sum([]byte("#!/bin/sh\necho shared\n")) }, "the file of the hardlink group")
	check("usr/bin/mm", func(e *Entry) bool { return e.Type == TypeHardlink && e.Link == "usr/bin/aa" }, "a hardlink to usr/bin/aa")
	check("etc/passwd", func(e *Entry) bool { return e.Type == TypeHardlink && e.Link == "etc/.pwd.bak" }, "a hardlink to etc/.pwd.bak")
	check("usr/bin/zz", func(e *Entry) bool { return e.Type == TypeHardlink && e.Link == "usr/bin/aa" }, "a hardlink to usr/bin/aa")
	check("usr/bin/ping", func(e *Entry) bool {
		return e.Mode == 0o4755 && e.Xattrs[XattrCapability] == capNetRaw && e.Xattrs["user.note"] == "a\x00binary\xffvalue"
	}, "setuid with two xattrs")
	check("hostetc", func(e *Entry) bool { return e.Type == TypeSymlink && e.Link == "/etc" }, "a symlink to /etc")
	check("dangling", func(e *Entry) bool { return e.Type == TypeSymlink && e.Link == "does/not/exist" }, "a dangling symlink")
	check("dev/null", func(e *Entry) bool { return e.Type == TypeChar && e.DevMajor == 1 && e.DevMinor == 3 }, "char 1,3")
	check("dev/sda", func(e *Entry) bool { return e.Type == TypeBlock && e.DevMajor == 8 && e.DevMinor == 0 }, "block 8,0")
	check("dev/initctl", func(e *Entry) bool { return e.Type == TypeFifo }, "a fifo")
	check("tmp", func(e *Entry) bool { return e.Type == TypeDir && e.Mode == 0o1777 }, "sticky dir")
	check("home/ingot", func(e *Entry) bool { return e.UID == 4242 && e.Uname == "ingot" && e.Gname == "ingot" }, "names from the tree's etc/passwd")
	check("home/ingot/stranger", func(e *Entry) bool { return e.UID == 777 && e.Uname == "" && e.Gname == "" }, "no names for unknown ids")
	check("caf\xc3\xa9 \\#*?[", func(e *Entry) bool { return e.Type == TypeFile }, "a file with an odd name")
	if m.Lookup("hostetc/passwd") != nil {
		t.Error("followed a symlink")
	}
	if e := m.Lookup("."); e.Mtime < 1600000000 {
		t.Errorf("root mtime %d", e.Mtime)
	}
	// fn saw each content once, in manifest order, never a hardlink.
	var files []string
	for _, e := range m.Entries {
		if e.Type == TypeFile {
			files = append(files, e.Path)
		}
	}
	if !slices.Equal(order, files) {
		t.Errorf("fn saw %q, want %q", order, files)
	}
	// The same walk twice gives the same manifest.
	m2, err := WalkDir(context.Background(), root, WalkOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Bytes(), m2.Bytes()) {
		t.Error("two walks differ")
	}
}

func TestWalkDirOptions(t *testing.T) {
	root := makeTree(t)
	t.Run("exclude", func(t *testing.T) {
		var asked []string
		m, err := WalkDir(context.Background(), root, WalkOptions{Exclude: func(p string) bool {
			asked = append(asked, p)
			return p == "home" || p == "usr/bin/zz"
		}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"home", "home/ingot", "usr/bin/zz"} {
			if m.Lookup(p) != nil {
				t.Errorf("%s not excluded", p)
			}
			if p == "home/ingot" && slices.Contains(asked, p) {
				t.Errorf("asked about %s, under an excluded directory", p)
			}
		}
		if e := m.Lookup("usr/bin/mm"); e.Type != TypeHardlink || e.Link != "usr/bin/aa" {
			t.Errorf("usr/bin/mm: %+v", e)
		}
	})
	t.Run("numeric-owner", func(t *testing.T) {
		m, err := WalkDir(context.Background(), root, WalkOptions{NumericOwner: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range m.Entries {
			if e.Uname != "" || e.Gname != "" {
				t.Fatalf("%s has names", e.Path)
			}
		}
	})
	t.Run("given-names", func(t *testing.T) {
		m, err := WalkDir(context.Background(), root, WalkOptions{Users: map[int]string{4242: "other"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if e := m.Lookup("home/ingot"); e.Uname != "other" || e.Gname != "ingot" {
			t.Fatalf("home/ingot: %+v", e)
		}
	})
	t.Run("xattr-filter", func(t *testing.T) {
		m, err := WalkDir(context.Background(), root, WalkOptions{Xattr: func(n string) bool { return strings.HasPrefix(n, "security.") }}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if x := m.Lookup("usr/bin/ping").Xattrs; len(x) != 1 || x[XattrCapability] != capNetRaw {
			t.Fatalf("xattrs %q", x)
		}
	})
	t.Run("one-file-system", func(t *testing.T) {
		mnt := filepath.Join(root, "tmp/a")
		if err := unix.Mount("ingot-test", mnt, "tmpfs", 0, "mode=0755"); err != nil {
			t.Fatalf("mounting a tmpfs (the test needs root with CAP_SYS_ADMIN): %v", err)
		}
		defer unix.Unmount(mnt, 0)
		if err := os.WriteFile(filepath.Join(mnt, "on-tmpfs"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, one := range []bool{false, true} {
			m, err := WalkDir(context.Background(), root, WalkOptions{OneFileSystem: one}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if m.Lookup("tmp/a") == nil {
				t.Errorf("OneFileSystem=%v: the mount point itself is missing", one)
			}
			if got := m.Lookup("tmp/a/on-tmpfs") != nil; got == one {
				t.Errorf("OneFileSystem=%v: file on the other mount listed=%v", one, got)
			}
		}
	})
	t.Run("socket", func(t *testing.T) {
		sock := filepath.Join(root, "tmp/sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		m, err := WalkDir(context.Background(), root, WalkOptions{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if e := m.Lookup("tmp/sock"); e == nil || e.Type != TypeSocket {
			t.Fatalf("tmp/sock: %+v", e)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := WalkDir(ctx, root, WalkOptions{}, nil); err != context.Canceled {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("not-a-directory", func(t *testing.T) {
		_, err := WalkDir(context.Background(), filepath.Join(root, "etc/passwd"), WalkOptions{}, nil)
		if err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Fatalf("got %v", err)
		}
	})
}

// TestWalkDirChangingFile: a file that grows while it is read fails the
// walk, unless AllowChanging, which records it as read.
func TestWalkDirChangingFile(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "log")
	if err := os.WriteFile(p, []byte("line 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Unix(1600000000, 0)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	grow := func(e *Entry, r io.Reader) error {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		f.WriteString("line 2\n")
		f.Close()
		_, err = io.Copy(io.Discard, r)
		return err
	}
	_, err := WalkDir(context.Background(), root, WalkOptions{}, grow)
	if err == nil || !strings.Contains(err.Error(), p+" changed while it was read") {
		t.Fatalf("got %v", err)
	}
	m, err := WalkDir(context.Background(), root, WalkOptions{AllowChanging: true}, grow)
	if err != nil {
		t.Fatal(err)
	}
	e := m.Lookup("log")
	if want := "line 1\nline 2\nline 2\n"; e.Size != int64(len(want)) || e.SHA256 != Sum([]byte(want)) || e.Mtime == old.Unix() {
		t.Fatalf("log: %+v", e)
	}
}
