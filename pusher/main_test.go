package pusher

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	if os.Getenv(attackEnv) != "" {
		// This process is a local user attacking the agent (attack_test.go).
		os.Exit(attackMain())
	}
	code := m.Run()
	if attackerBin != "" {
		os.RemoveAll(filepath.Dir(attackerBin))
	}
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// ingotBinary builds the ingot command once per test run: the crash and
// end-to-end tests run agents as real processes.
func ingotBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "ingot-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "ingot")
		goTool, err := exec.LookPath("go")
		if err != nil {
			binErr = err
			return
		}
		out, err := exec.Command(goTool, "build", "-o", binPath, "github.com/ingotfleet/ingot/cmd/ingot").CombinedOutput()
		if err != nil {
			binErr = &buildError{err, string(out)}
		}
	})
	if binErr != nil {
		t.Fatalf("building ingot: %v", binErr)
	}
	return binPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }
