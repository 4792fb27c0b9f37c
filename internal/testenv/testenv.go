package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireRoot fails t unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test needs root (namespaces, chroot, device nodes, ownership): run `sudo make test`")
	}
}

// RequireTool fails t unless program is on PATH, naming the Debian package
// that provides it. It returns the program's path.
func RequireTool(t testing.TB, program, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err != nil {
		t.Fatalf("this test needs %s: apt-get install %s (or run `make deps`)", program, debianPackage)
	}
	return p
}

// Short reports whether the heavy tests (real Debian roots, many
// processes) should be left out: only when the developer asked for
// `go test -short`. CI never passes -short.
func Short() bool { return testing.Short() }
