package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var ingotBin struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// IngotBinary builds cmd/ingot once per test binary and returns its path
// (for tests that run agents or controllers as processes).
func IngotBinary(t testing.TB) string {
	t.Helper()
	b := &ingotBin
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "ingot-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "ingot")
		b.out, b.err = exec.Command("go", "build", "-o", b.path, "github.com/ingotfleet/ingot/cmd/ingot").CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("building ingot: %v\n%s", b.err, b.out)
	}
	return b.path
}

// RemoveIngotBinary removes what IngotBinary built; TestMain calls it
// after m.Run.
func RemoveIngotBinary() {
	if ingotBin.path != "" {
		os.RemoveAll(filepath.Dir(ingotBin.path))
	}
}
