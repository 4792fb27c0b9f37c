package pusher

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ingotfleet/ingot/internal/testenv"
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
	testenv.RemoveIngotBinary()
	os.Exit(code)
}

// ingotBinary builds the ingot command once per test run: the crash and
// end-to-end tests run agents as real processes.
func ingotBinary(t testing.TB) string { return testenv.IngotBinary(t) }

// ingotCrashBinary is ingotBinary with the crash tests' hook
// (testenv.IngotCrashBinary).
func ingotCrashBinary(t testing.TB) string { return testenv.IngotCrashBinary(t) }
