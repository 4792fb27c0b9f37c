package sandboxtest

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// MiniRoot makes a root directory under t.TempDir() holding the named host
// programs (looked up on PATH) and their shared libraries, plus bin, sbin,
// lib and lib64 as symlinks into usr, and empty etc, tmp, root, usr/sbin.
func MiniRoot(t testing.TB, programs ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc", "root", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		if err := os.Symlink("usr/"+l, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range programs {
		host, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("MiniRoot: %s not on the host: %v", p, err)
		}
		copyIn(t, root, host, filepath.Join("/usr/bin", filepath.Base(host)))
		for _, lib := range libraries(t, host) {
			copyIn(t, root, lib, lib)
		}
	}
	return root
}

// libraries lists the shared objects ldd says prog needs.
func libraries(t testing.TB, prog string) []string {
	out, err := exec.Command("ldd", prog).Output()
	if err != nil {
		return nil // static or not ELF
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if strings.HasPrefix(f, "/") {
				libs = append(libs, f)
			}
		}
	}
	return libs
}

// copyIn copies host file src to dst inside root, resolving the host's
// symlinks and writing below usr/ where the root has a symlink.
func copyIn(t testing.TB, root, src, dst string) {
	t.Helper()
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		t.Fatal(err)
	}
	dst = filepath.Clean(dst)
	for _, l := range []string{"/bin/", "/sbin/", "/lib/", "/lib64/"} {
		if strings.HasPrefix(dst, l) {
			dst = "/usr" + dst
		}
	}
	target := filepath.Join(root, dst)
	if _, err := os.Lstat(target); err == nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(real)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	fi, _ := in.Stat()
	out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
