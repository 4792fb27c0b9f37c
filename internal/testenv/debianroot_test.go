package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWithLockExcludes: callers holding the cache lock never overlap, even
// within one process (flock locks belong to each open file).
func TestWithLockExcludes(t *testing.T) {
	dir := t.TempDir()
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			WithLock(t, dir, func() {
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
				inside.Add(-1)
			})
		}()
	}
	wg.Wait()
	if n := overlaps.Load(); n > 0 {
		t.Fatalf("%d callers held the lock at once", n)
	}
}

// TestDebianRoot: the reference root is a Debian 12 system, as a tar and
// extracted.
func TestDebianRoot(t *testing.T) {
	tarball := DebianRootTar(t)
	out, err := exec.Command("tar", "-tf", tarball, "./etc/debian_version", "./usr/bin/dpkg").CombinedOutput()
	if err != nil {
		t.Fatalf("%s lacks a Debian system: %v\n%s", tarball, err, out)
	}
	root := DebianRootDir(t)
	v, err := os.ReadFile(filepath.Join(root, "etc/debian_version"))
	if err != nil || !strings.HasPrefix(string(v), "12.") {
		t.Fatalf("etc/debian_version: %q, %v", v, err)
	}
	fi, err := os.Lstat(filepath.Join(root, "dev/null"))
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("dev/null is not a char device: %v %v", fi, err)
	}
	// Asking again reuses the cache.
	if again := DebianRootTar(t); again != tarball {
		t.Fatalf("second call: %s, first %s", again, tarball)
	}
}
