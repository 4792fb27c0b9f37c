package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

type ingotBuild struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// The shipped build, and the build with the crash tests' hook
// (-tags ingotcrash: cmd/ingot/crashhook.go).
var ingotBin, ingotCrashBin ingotBuild

// IngotBinary builds cmd/ingot once per test binary and returns its path
// (for tests that run agents or controllers as processes).
func IngotBinary(t testing.TB) string {
	t.Helper()
	return ingotBin.build(t)
}

// IngotCrashBinary is IngotBinary built with -tags ingotcrash: its agent
// reads INGOT_AGENT_CRASH_AT and INGOT_AGENT_STEPS, which the shipped
// binary ignores, so the crash tests can kill it at an exact step.
func IngotCrashBinary(t testing.TB) string {
	t.Helper()
	return ingotCrashBin.build(t, "-tags", "ingotcrash")
}

func (b *ingotBuild) build(t testing.TB, flags ...string) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "ingot-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "ingot")
		args := append(append([]string{"build"}, flags...), "-o", b.path, "github.com/ingotfleet/ingot/cmd/ingot")
		b.out, b.err = exec.Command("go", args...).CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("building ingot: %v\n%s", b.err, b.out)
	}
	return b.path
}

// RemoveIngotBinary removes what IngotBinary and IngotCrashBinary built;
// TestMain calls it after m.Run.
func RemoveIngotBinary() {
	for _, b := range []*ingotBuild{&ingotBin, &ingotCrashBin} {
		if b.path != "" {
			_ = os.RemoveAll(filepath.Dir(b.path)) // best effort: a temporary directory
		}
	}
}
