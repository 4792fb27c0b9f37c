package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/ingotfleet/ingot/images"
)

// CheckResult is the outcome of two builds of the same input under
// different conditions.
type CheckResult struct {
	A, B   images.Digest
	Deltas []images.Delta // empty when the builds are identical
}

// OK reports whether both builds gave the same image.
func (c *CheckResult) OK() bool { return c.A == c.B && len(c.Deltas) == 0 }

// Variation describes how the second build of Check differs from the first.
const Variation = "build directory (another, deeper path), unpack order (reversed), " +
	"umask 077 and TZ=Pacific/Chatham outside the sandbox, one CPU (GOMAXPROCS=1, one unpack worker)"

// Check builds in twice, the second time under varied conditions (see
// Variation), and compares the two images path by path. The process's
// umask, TZ and GOMAXPROCS are restored afterwards.
func Check(ctx context.Context, in *Input, opts Options) (*CheckResult, error) {
	base := opts.WorkDir
	if base == "" {
		base = os.TempDir()
	}
	walk := func(o Options) (*images.Manifest, error) {
		r, err := BuildRoot(ctx, in, o)
		if err != nil {
			return nil, err
		}
		defer r.Cleanup()
		return images.WalkDir(ctx, r.Dir, images.WalkOptions{}, nil)
	}
	a := opts
	a.WorkDir = filepath.Join(base, "check-a")
	ma, err := walk(a)
	if err != nil {
		return nil, fmt.Errorf("first build: %w", err)
	}
	b := opts
	b.WorkDir = filepath.Join(base, "check-b", "a", "deeper", "build", "directory")
	b.ReverseUnpack = true
	b.Workers = 1
	oldProcs := runtime.GOMAXPROCS(1)
	oldMask := syscall.Umask(0o077)
	oldTZ, hadTZ := os.LookupEnv("TZ")
	os.Setenv("TZ", "Pacific/Chatham")
	mb, err := walk(b)
	runtime.GOMAXPROCS(oldProcs)
	syscall.Umask(oldMask)
	if hadTZ {
		os.Setenv("TZ", oldTZ)
	} else {
		os.Unsetenv("TZ")
	}
	os.RemoveAll(filepath.Join(base, "check-a"))
	os.RemoveAll(filepath.Join(base, "check-b"))
	if err != nil {
		return nil, fmt.Errorf("second build: %w", err)
	}
	return &CheckResult{A: ma.Digest(), B: mb.Digest(), Deltas: images.Compare(ma, mb, images.CompareOptions{})}, nil
}
