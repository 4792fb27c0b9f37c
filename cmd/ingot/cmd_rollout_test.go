package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/internal/cli"
)

// TestRolloutCommandLine: bad inventory and policy files are refused with
// their file and line and exit 2 before anything starts; a good pair
// plans; missing flags are usage errors; an unreachable controller is an
// error.
func TestRolloutCommandLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	inv := write("inventory.yaml", `hosts:
  - {name: a1, addr: "127.0.0.1:1", colo: ams, sets: [web]}
  - {name: f1, addr: "127.0.0.1:2", colo: fra, sets: [web]}
  - {name: f2, addr: "127.0.0.1:3", colo: fra, sets: [db]}
`)
	pol := write("policy.yaml", "canary: {colos: [ams], bake: 5m}\nwaves: [{size: 1 per set}]\n")
	dup := write("dup.yaml", "hosts:\n  - {name: a, addr: \"h:1\", colo: c, sets: [s]}\n  - {name: a, addr: \"h:2\", colo: c, sets: [s]}\n")
	zero := write("zero.yaml", "max_unavailable: 0%\n")
	state := filepath.Join(dir, "state")
	for _, c := range []struct {
		args []string
		code int
		want string // in stdout or stderr
	}{
		{[]string{"rollout", "plan", "--inventory", inv, "--policy", pol}, cli.ExitOK, "stage 0, within budget  web 1/1"},
		{[]string{"rollout", "plan", "--inventory", dup, "--policy", pol}, cli.ExitError, "dup.yaml:3: host a listed twice"},
		{[]string{"rollout", "plan", "--inventory", inv, "--policy", zero}, cli.ExitError, "zero.yaml:1: max_unavailable: \"0%\""},
		{[]string{"rollout", "start", "sha256:" + strings.Repeat("ab", 32), "--inventory", inv, "--policy", zero, "--state", state}, cli.ExitError, "zero.yaml:1:"},
		{[]string{"rollout", "start", "sha256:" + strings.Repeat("ab", 32), "--inventory", inv}, cli.ExitUsage, "--inventory and --policy are required"},
		{[]string{"rollout", "skip"}, cli.ExitUsage, "accepts 1 arg"},
		{[]string{"rollout"}, cli.ExitUsage, "missing subcommand"},
		{[]string{"rollout", "status", "--api", "127.0.0.1:1", "--ca", filepath.Join(dir, "none.pem")}, cli.ExitError, "none.pem"},
	} {
		code, out, errOut := runApp(t, nil, c.args...)
		if code != c.code || !strings.Contains(out+errOut, c.want) {
			t.Errorf("ingot %s: exit %d, want %d with %q\n%s%s", strings.Join(c.args, " "), code, c.code, c.want, out, errOut)
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("a refused policy left state behind: %v", err)
	}
}
