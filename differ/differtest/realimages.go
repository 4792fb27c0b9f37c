package differtest

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/ingotfleet/ingot/internal/testenv"
)

var realImagesOnce struct {
	sync.Once
	dir string
	err error
}

// RealImages builds (once per machine, cached) the real image tars with
// differ/testdata/realimages.sh and returns their directory: old.tar
// (bookworm), new.tar (the same packages from bookworm + -updates +
// -security) and minbase.tar. It needs root and mmdebstrap, and fails the
// test naming what is missing.
func RealImages(t testing.TB) string {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "mmdebstrap", "mmdebstrap")
	realImagesOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(file), "..", "testdata", "realimages.sh")
		out, err := exec.Command(script).Output()
		realImagesOnce.dir, realImagesOnce.err = strings.TrimSpace(string(out)), err
	})
	if realImagesOnce.err != nil {
		t.Fatalf("building the real images: %v", realImagesOnce.err)
	}
	return realImagesOnce.dir
}
