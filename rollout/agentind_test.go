package rollout_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/internal/localfleet"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher/agent"
	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/rollout"
	"github.com/ingotfleet/ingot/rollout/rollouttest"
)

// TestAgentIndicators rolls an image over four real agents whose hosts
// hold the rollout back from their own side: host-02 has its block file,
// host-03's check command fails (configured Unavailable), host-04's agent
// is down. Each waits, with its reason in the audit log, until the file is
// removed, the command passes, the agent is back; then the rollout ends
// with every host at the new image.
func TestAgentIndicators(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	ss := newSignedStore(t)
	imgA := ss.publish(t, map[string]string{"etc/os-release": "A\n"})
	imgB := ss.publish(t, map[string]string{"etc/os-release": "B\n", "usr/share/new": "new\n"})

	dir := t.TempDir()
	hold := filepath.Join(dir, "hold")
	busy := filepath.Join(dir, "busy")
	os.WriteFile(hold, []byte("kernel debugging, ask bob\n"), 0o644)
	os.WriteFile(busy, nil, 0o644)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port4 := l.Addr().String() // host-04 keeps its address across a restart
	l.Close()
	fleet, err := localfleet.Start(ctx, localfleet.Options{N: 4, Dir: t.TempDir(), Stores: []string{ss.url}, TrustedKeys: []string{ss.pub},
		Extra: func(i int, c *agent.Config) {
			switch i {
			case 1:
				c.Maintenance.BlockFile = hold
			case 2:
				c.Maintenance.CheckCommand = []string{"sh", "-c", "if [ -e " + busy + " ]; then echo backup running; exit 1; fi"}
				c.Maintenance.CheckKind = api.IndicatorUnavailable
				c.Maintenance.CheckInterval = time.Nanosecond
			case 3:
				c.Listen = port4
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Stop()
	if _, err := fleet.Push(ctx, agentclient.PushOptions{Image: imgA, Concurrency: 4}); err != nil {
		t.Fatal(err)
	}
	fleet.Kill(fleet.Agents[3])

	var inv strings.Builder
	inv.WriteString("hosts:\n")
	for _, h := range fleet.Hosts {
		fmt.Fprintf(&inv, "  - {name: %s, addr: %q, colo: c1, sets: [s1]}\n", h.Name, h.Addr)
	}
	pl, bs := beginRollout(ctx, t, inv.String(), "interval: 100ms\nmax_unavailable: 2\ncooldown: 100ms\n", imgB.String())
	audit := &rollouttest.Log{}
	ctl := &rollout.Controller{Plan: pl, Store: bs, Agents: &rollout.PusherAgents{Client: fleet.Client}, Audit: audit}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ctl.Run(rctx) }()

	waitFor := func(what string) {
		t.Helper()
		for !strings.Contains(audit.String(), what) {
			select {
			case err := <-done:
				t.Fatalf("controller ended (%v) before the audit log showed %s:\n%s", err, what, audit.String())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	waitFor(`"action":"finish","host":"host-01"`)
	waitFor(`"action":"wait","host":"host-02","stage":1,"reason":"blocked: agent block_file: ` + hold + ` present: kernel debugging, ask bob"`)
	waitFor(`"action":"wait","host":"host-03","stage":1,"reason":"unavailable: agent check_command: sh -c`)
	waitFor(`"action":"wait","host":"host-04","stage":1,"reason":"blocked: agent unreachable`)
	// host-03's Unavailable takes one slot of s1's two: the used budget
	// shows it while nobody else is at work.
	if s := ctl.Snapshot(); len(s.Sets) != 1 || s.Sets[0].Used != 1 {
		t.Errorf("s1's budget with host-03 Unavailable: %+v", s.Sets)
	}
	// Held a few evaluations more, nothing of theirs starts.
	time.Sleep(500 * time.Millisecond)
	for _, h := range []string{"host-02", "host-03", "host-04"} {
		if strings.Contains(audit.String(), `"action":"start","host":"`+h+`"`) {
			t.Fatalf("%s started while held back:\n%s", h, audit.String())
		}
	}
	if s, err := fleet.Client.Status(ctx, fleet.Hosts[1].Addr); err != nil || s.Image != imgA.String() {
		t.Fatalf("host-02 while blocked: %+v %v", s, err)
	}
	os.Remove(hold)
	waitFor(`"action":"start","host":"host-02"`)
	os.Remove(busy)
	waitFor(`"action":"start","host":"host-03"`)
	if err := fleet.Restart(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("controller: %v", err)
	}
	for _, a := range fleet.Agents {
		s, err := fleet.Client.Status(ctx, a.Addr)
		if err != nil || s.Image != imgB.String() {
			t.Fatalf("%s: %+v %v; want at %s", a.Name, s, err, imgB)
		}
	}
	evs, err := rollout.ParseAudit([]byte(audit.String()))
	if err != nil {
		t.Fatal(err)
	}
	checkBudgets(t, pl, evs, func(h string, i int) bool { return false })
}
