package rollout_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/rollout"
	"github.com/ingotfleet/ingot/rollout/boltstore"
	"github.com/ingotfleet/ingot/rollout/config"
	"github.com/ingotfleet/ingot/rollout/rollouttest"
)

// TestMain runs the crash test's controller when the test binary is
// started as its child.
func TestMain(m *testing.M) {
	if dir := os.Getenv("INGOT_ROLLOUT_CHILD"); dir != "" {
		if err := crashChild(dir, os.Getenv("INGOT_ROLLOUT_AGENTS")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	code := m.Run()
	testenv.RemoveIngotBinary()
	os.Exit(code)
}

// crashChild is the controller process: state and audit log in dir,
// agents served by the parent at agentsURL.
func crashChild(dir, agentsURL string) error {
	ctx := context.Background()
	inv, err := config.LoadInventory(filepath.Join(dir, "inventory.yaml"))
	if err != nil {
		return err
	}
	pol, err := config.LoadPolicy(filepath.Join(dir, "policy.yaml"), inv)
	if err != nil {
		return err
	}
	pl := rollout.NewPlan(inv, pol)
	store, err := boltstore.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := rollout.Begin(ctx, store, pl, newImage, time.Now()); err != nil {
		return err
	}
	audit, err := os.OpenFile(filepath.Join(dir, "audit.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer audit.Close()
	ctl := &rollout.Controller{Plan: pl, Store: store, Agents: rollouttest.HTTPAgents{URL: agentsURL}, Audit: audit}
	return ctl.Run(ctx)
}

// TestControllerCrash kills the controller (a child process) with SIGKILL
// at 100 random instants and starts it again each time: every host ends
// at the new image, synced exactly once, and no set went over budget.
func TestControllerCrash(t *testing.T) {
	dir := t.TempDir()
	inv := simInventory(8, 12)
	pol := `
interval: 20ms
canary: {colos: [c0], bake: 50ms}
waves: [{size: 1 per set, bake: 20ms}, {size: 100%}]
max_unavailable: 20%
cooldown: 30ms
`
	os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte(inv), 0o644)
	os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(pol), 0o644)
	in, err := config.ParseInventory("inventory.yaml", []byte(inv))
	if err != nil {
		t.Fatal(err)
	}
	po, err := config.ParsePolicy("policy.yaml", []byte(pol), in)
	if err != nil {
		t.Fatal(err)
	}
	pl := rollout.NewPlan(in, po)
	fleet := rollouttest.NewFleet(in.Hosts, oldImage, 40*time.Millisecond)
	srv := httptest.NewServer(fleet)
	defer srv.Close()
	run := func() (*exec.Cmd, chan error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "INGOT_ROLLOUT_CHILD="+dir, "INGOT_ROLLOUT_AGENTS="+srv.URL)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		return cmd, done
	}
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	auditSize := func() int64 {
		fi, err := os.Stat(filepath.Join(dir, "audit.jsonl"))
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	// Each life of the controller is killed at a random instant up to
	// 30 ms after it first wrote to its audit log (so that every life,
	// however slow the machine, gets somewhere).
	for ; kills < 100; kills++ {
		size := auditSize()
		cmd, done := run()
		var err error
		exited := false
	wait:
		for auditSize() == size {
			select {
			case err = <-done:
				exited = true
				break wait
			case <-time.After(2 * time.Millisecond):
			}
		}
		if !exited {
			select {
			case <-time.After(time.Duration(rng.IntN(30)) * time.Millisecond):
				cmd.Process.Signal(syscall.SIGKILL)
				<-done
				continue
			case err = <-done:
			}
		}
		if err != nil {
			t.Fatalf("controller failed after %d kills: %v", kills, err)
		}
		t.Logf("the rollout completed after %d kills", kills)
		kills = 1000
	}
	if kills < 1000 {
		n := 0
		for _, h := range in.Hosts {
			if fleet.Agent(h.Name).Image == newImage {
				n++
			}
		}
		t.Logf("after %d kills %d of %d hosts are at the new image; running to the end", kills, n, len(in.Hosts))
		if n == 0 {
			t.Fatalf("no progress across %d restarts", kills)
		}
		_, done := run()
		if err := <-done; err != nil {
			t.Fatalf("controller after %d kills: %v", kills, err)
		}
	}
	for _, h := range in.Hosts {
		a := fleet.Agent(h.Name)
		if a.Image != newImage || len(a.Syncs) != 1 {
			t.Errorf("%s: at %s after %d syncs; want one sync to %s", h.Name, a.Image, len(a.Syncs), newImage)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := rollout.ParseAudit(b)
	if err != nil {
		t.Fatal(err)
	}
	checkCrashBudgets(t, pl, evs)
}

// checkCrashBudgets replays the audit log of a controller that was killed
// again and again: a host may start once per step (a start logged twice
// for the same step would be a second sync) and counts until it finishes.
func checkCrashBudgets(t *testing.T, pl *rollout.Plan, evs []rollout.Event) {
	t.Helper()
	started := map[string]int{}
	for _, e := range evs {
		if e.Action == rollout.Start {
			started[e.Host]++
			if started[e.Host] > 1 {
				t.Fatalf("%s started twice (step %d)", e.Host, e.Step)
			}
		}
	}
	checkBudgets(t, pl, evs, func(string, int) bool { return false })
}
