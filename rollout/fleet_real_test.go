package rollout_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/internal/localfleet"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/internal/testenv/debianpair"
	"github.com/ingotfleet/ingot/pusher"
	"github.com/ingotfleet/ingot/pusher/agent"
	"github.com/ingotfleet/ingot/rollout"
	"github.com/ingotfleet/ingot/rollout/config"
	"github.com/ingotfleet/ingot/rollout/promtest"
	"github.com/ingotfleet/ingot/rollout/rollouttest"
)

// mixedAgents sends the real hosts' calls to their agents and the
// others' to the fakes.
type mixedAgents struct {
	fake *rollouttest.Fleet
	real *rollout.PusherAgents
	is   map[string]bool
}

func (m *mixedAgents) pick(h config.Host) rollout.Agents {
	if m.is[h.Name] {
		return m.real
	}
	return m.fake
}

func (m *mixedAgents) Status(ctx context.Context, h config.Host) (rollout.AgentStatus, error) {
	return m.pick(h).Status(ctx, h)
}

func (m *mixedAgents) Sync(ctx context.Context, h config.Host, image string) (int64, error) {
	return m.pick(h).Sync(ctx, h, image)
}

func (m *mixedAgents) Rollback(ctx context.Context, h config.Host) (int64, error) {
	return m.pick(h).Rollback(ctx, h)
}

// TestFleetSimulationRealAgents is the 1,000-host simulation with 20 of
// the hosts real agent processes syncing the real Debian image pair (A to
// B, on a tmpfs), spread over 20 sets and the 3 colos, four of them in
// the canary colo, among 980 fakes; indicators from a real Prometheus and
// Alertmanager hold one real host back until its alert clears. At the end
// every real agent's root verifies at B (`ingot image verify --root`),
// every fake is at B after one sync, and no set went over its budget.
func TestFleetSimulationRealAgents(t *testing.T) {
	testenv.RequireRoot(t)
	pair := debianpair.Load(t)
	bin := testenv.IngotBinary(t)
	ctx := context.Background()
	srv := httptest.NewServer(http.FileServer(http.Dir(pair.Store)))
	defer srv.Close()

	// Real host i stands in set s(2i); the first four in the canary colo.
	const nReal = 20
	var realNames []string
	for i := range nReal {
		j := 1 // c0
		if i >= 4 {
			j = 10 + i%2 // c1, c2
		}
		realNames = append(realNames, fmt.Sprintf("s%02d-h%02d", 2*i, j))
	}
	blocked := realNames[6] // a real host whose alert holds it back

	work, err := os.MkdirTemp("", "ingot-tmpfs-")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", work, "tmpfs", 0, "size=7g,mode=0755"); err != nil {
		t.Fatalf("mounting a tmpfs: %v", err)
	}
	defer func() { unix.Unmount(work, unix.MNT_DETACH); os.Remove(work) }()
	fleet, err := localfleet.Start(ctx, localfleet.Options{N: nReal, Dir: work, Binary: bin,
		Stores: []string{srv.URL}, TrustedKeys: []string{pair.KeyFile},
		Extra: func(i int, c *agent.Config) { c.Limits.Concurrency = 4 }})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Stop()
	start := time.Now()
	if _, err := fleet.Push(ctx, agentclient.PushOptions{Image: pair.A, Concurrency: 5}); err != nil {
		t.Fatal(err)
	}
	t.Logf("20 real agents at A in %v", time.Since(start).Round(time.Second))

	addr := map[string]string{}
	for i, n := range realNames {
		addr[n] = fleet.Hosts[i].Addr
	}
	inv := simInventory(40, 25)
	for n, a := range addr {
		i := strings.Index(inv, "{name: "+n+", addr: \"")
		if i < 0 {
			t.Fatalf("%s not in the inventory", n)
		}
		i += len("{name: " + n + ", addr: \"")
		inv = inv[:i] + a + inv[i+strings.IndexByte(inv[i:], '"'):]
	}

	stack := promtest.Start(t, indicatorRules)
	stack.Exporter.Set(series(blocked, rollout.Blocked), 1)
	src := &rollout.AlertSource{Sources: config.IndicatorSources{Prometheus: stack.PrometheusURL(), Alertmanager: stack.AlertmanagerURL(),
		KindKey: "ingot_indicator", HostLabel: "host", Timeout: 2 * time.Second}}
	for len(src.Read(ctx).Hosts[blocked]) == 0 {
		time.Sleep(100 * time.Millisecond)
	}

	pl, bs := beginRollout(ctx, t, inv, `
interval: 50ms
canary: {colos: [c0], bake: 300ms}
waves: [{size: 1 per set, bake: 200ms}, {size: 25%, bake: 100ms}, {size: 100%}]
max_unavailable: 10%
cooldown: 100ms
health: {deadline: 5m}
`, pair.B.String())
	fakes := rollouttest.NewFleet(pl.Inv.Hosts, pair.A.String(), 20*time.Millisecond)
	is := map[string]bool{}
	for _, n := range realNames {
		is[n] = true
	}
	audit := &rollouttest.Log{}
	ctl := &rollout.Controller{Plan: pl, Store: bs, Agents: &mixedAgents{fake: fakes, real: &rollout.PusherAgents{Client: fleet.Client}, is: is},
		Health: fakes.Health, Audit: audit, Indicators: src.Read, Poll: 200 * time.Millisecond}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	start = time.Now()
	go func() { done <- ctl.Run(rctx) }()

	// The blocked real host waits when its stage comes, held by its alert
	// for a second (20 evaluations) while the others go on; then it clears.
	for !slices.ContainsFunc(mustEvents(t, audit), func(e rollout.Event) bool {
		return e.Action == rollout.Wait && e.Host == blocked && strings.Contains(e.Reason, "blocked: ") && strings.Contains(e.Reason, "alert IngotIndicator")
	}) {
		select {
		case err := <-done:
			t.Fatalf("controller ended (%v) before %s waited for its alert", err, blocked)
		case <-time.After(100 * time.Millisecond):
		}
	}
	time.Sleep(time.Second)
	cleared := time.Now()
	stack.Exporter.Set(series(blocked, rollout.Blocked), 0)
	if err := <-done; err != nil {
		t.Fatalf("controller: %v", err)
	}
	t.Logf("rollout of 1,000 hosts (20 real) in %v", time.Since(start).Round(time.Second))

	evs, err := audit.Events()
	if err != nil {
		t.Fatal(err)
	}
	checkBudgets(t, pl, evs, func(string, int) bool { return false })
	stage0, _ := first(evs, func(e rollout.Event) bool { return e.Action == rollout.StageDone && e.Stage == 0 })
	firstOther, _ := first(evs, func(e rollout.Event) bool { return e.Action == rollout.Start && e.Stage > 0 })
	if stage0.Time.IsZero() || firstOther.Time.Before(stage0.Time.Add(300*time.Millisecond)) {
		t.Errorf("canary stage done at %v, first other host started at %v: not baked 300ms", stage0.Time, firstOther.Time)
	}
	if e, _ := first(evs, func(e rollout.Event) bool { return e.Action == rollout.Start && e.Host == blocked }); e.Time.Before(cleared) {
		t.Errorf("%s started at %v, before its alert was cleared at %v", blocked, e.Time, cleared)
	}
	for _, h := range pl.Inv.Hosts {
		if is[h.Name] {
			continue
		}
		if a := fakes.Agent(h.Name); a.Image != pair.B.String() || len(a.Syncs) != 1 {
			t.Fatalf("%s: at %s after %d syncs", h.Name, a.Image, len(a.Syncs))
		}
	}
	// Every real agent, from its own records and from its root.
	for i, n := range realNames {
		a := fleet.Agents[i]
		s, err := fleet.Client.Status(ctx, a.Addr)
		if err != nil || s.Image != pair.B.String() || s.Last == nil || !s.Last.OK {
			t.Fatalf("%s (%s): %+v %v; want at B", n, a.Name, s, err)
		}
		if !slices.ContainsFunc(evs, func(e rollout.Event) bool { return e.Action == rollout.Synced && e.Host == n }) {
			t.Errorf("%s: no synced event", n)
		}
		args := []string{"--store", pair.Store, "image", "verify", pair.B.String(), "--root", a.Root, "--one-file-system"}
		for _, g := range pusher.DefaultLocal {
			args = append(args, "--exclude", g)
		}
		if out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s: ingot image verify B --root %s: %v\n%s", n, a.Root, err, out)
		}
	}
}

func mustEvents(t *testing.T, l *rollouttest.Log) []rollout.Event {
	t.Helper()
	evs, err := l.Events()
	if err != nil {
		t.Fatal(err)
	}
	return evs
}
