package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// The reference Debian root: what it is made of and how.
const (
	DebianSuite   = "bookworm"
	DebianVariant = "minbase"
	DebianMirror  = "http://deb.debian.org/debian"
	// DebianEpoch is the SOURCE_DATE_EPOCH of the reference root: every
	// mtime in it is clamped to this.
	DebianEpoch = 1700000000
)

// CacheDir is where heavy test fixtures are built once and kept:
// $INGOT_TEST_CACHE, else /var/cache/ingot-test.
func CacheDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("INGOT_TEST_CACHE")
	if dir == "" {
		dir = "/var/cache/ingot-test"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("test cache: %v (set INGOT_TEST_CACHE to a writable directory)", err)
	}
	return dir
}

// debianName is the cache name of the reference root for this machine.
func debianName() string {
	return fmt.Sprintf("debian-%s-%s-%s-%d", DebianSuite, DebianVariant, runtime.GOARCH, DebianEpoch)
}

// DebianRootTar returns the path of a tarball of a real Debian bookworm
// minbase root (`mmdebstrap --variant=minbase bookworm` from the Debian
// mirror, SOURCE_DATE_EPOCH=DebianEpoch), built on first use and cached in
// CacheDir. Several test binaries may ask at once: one builds, the others
// wait. Needs root and mmdebstrap. Treat the file as read-only.
func DebianRootTar(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "mmdebstrap", "mmdebstrap")
	dir := CacheDir(t)
	path := filepath.Join(dir, debianName()+".tar")
	WithLock(t, dir, func() {
		if _, err := os.Stat(path); err == nil {
			return
		}
		tmp := filepath.Join(dir, fmt.Sprintf("partial-%d-%s.tar", os.Getpid(), debianName()))
		defer func() { _ = os.Remove(tmp) }() // gone once renamed into place; a leftover is named per pid
		cmd := exec.Command("mmdebstrap", "--quiet", "--mode=root", "--format=tar",
			"--variant="+DebianVariant, DebianSuite, tmp, DebianMirror)
		cmd.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", DebianEpoch), "LC_ALL=C.UTF-8", "TZ=UTC")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building the reference Debian root: %s: %v\n%s", cmd, err, tail(out))
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	})
	return path
}

// DebianRootDir returns a directory holding DebianRootTar extracted once,
// as root, with owners, modes, devices, mtimes and every xattr preserved
// (GNU tar -xpf --numeric-owner --xattrs --xattrs-include='*'). It is
// shared by every test: never change it; copy it first.
func DebianRootDir(t testing.TB) string {
	t.Helper()
	tarball := DebianRootTar(t)
	RequireTool(t, "tar", "tar")
	dir := CacheDir(t)
	root := filepath.Join(dir, debianName()+".root")
	WithLock(t, dir, func() {
		if _, err := os.Stat(root); err == nil {
			return
		}
		tmp := filepath.Join(dir, fmt.Sprintf("partial-%d-%s.root", os.Getpid(), debianName()))
		// A leftover of an earlier run with our pid: if it cannot go, the
		// Mkdir below says so.
		_ = os.RemoveAll(tmp)
		defer func() { _ = os.RemoveAll(tmp) }() // gone once renamed into place
		if err := os.Mkdir(tmp, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("tar", "--extract", "--file", tarball, "--directory", tmp,
			"--preserve-permissions", "--same-owner", "--numeric-owner",
			"--xattrs", "--xattrs-include=*")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("extracting the reference Debian root: %s: %v\n%s", cmd, err, tail(out))
		}
		if err := os.Rename(tmp, root); err != nil {
			t.Fatal(err)
		}
	})
	return root
}

// WithLock runs fn holding an exclusive flock on dir/.lock, so that test
// binaries running at once build a fixture only once.
func WithLock(t testing.TB, dir string, fn func()) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("test cache lock: %v", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatalf("test cache lock: %v", err)
	}
	defer func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN) }() // closing f releases it as well
	fn()
}

// tail is the end of a command's output, enough to see why it failed.
func tail(out []byte) []byte {
	const n = 4000
	if len(out) > n {
		out = append([]byte("…"), out[len(out)-n:]...)
	}
	return bytes.TrimSpace(out)
}
