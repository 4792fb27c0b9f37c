package differtest

import (
	"bytes"
	"os"
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

// Golden compares got with the file at path, or rewrites the file when
// update is set (a test's -update flag).
func Golden(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (go test -update rewrites it); got:\n%s", path, got)
	}
}
