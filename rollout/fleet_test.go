package rollout_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/rollout"
	"github.com/ingotfleet/ingot/rollout/boltstore"
	"github.com/ingotfleet/ingot/rollout/config"
	"github.com/ingotfleet/ingot/rollout/promtest"
	"github.com/ingotfleet/ingot/rollout/rollouttest"
)

const (
	oldImage = "sha256:" + "00000000000000000000000000000000000000000000000000000000000000aa"
	newImage = "sha256:" + "00000000000000000000000000000000000000000000000000000000000000bb"
)

// simInventory is sets×perSet hosts: host j of set i is "sNN-hJJ"; the
// first two of every set stand in the canary colo c0, the others
// alternate between c1 and c2.
func simInventory(sets, perSet int) string {
	var b strings.Builder
	b.WriteString("hosts:\n")
	for i := range sets {
		for j := range perSet {
			colo := "c0"
			if j >= 2 {
				colo = fmt.Sprintf("c%d", 1+j%2)
			}
			fmt.Fprintf(&b, "  - {name: s%02d-h%02d, addr: \"127.0.0.1:%d\", colo: %s, sets: [s%02d]}\n", i, j, 10000+i*perSet+j, colo, i)
		}
	}
	return b.String()
}

type simWorld struct {
	t      *testing.T
	pl     *rollout.Plan
	fleet  *rollouttest.Fleet
	audit  *rollouttest.Log
	ctl    *rollout.Controller
	done   chan struct{} // closed when Run returned runErr
	runErr error
}

func startSim(t *testing.T, inv, pol string, ind func(context.Context) rollout.Indicators) *simWorld {
	t.Helper()
	in, err := config.ParseInventory("inventory.yaml", []byte(inv))
	if err != nil {
		t.Fatal(err)
	}
	po, err := config.ParsePolicy("policy.yaml", []byte(pol), in)
	if err != nil {
		t.Fatal(err)
	}
	w := &simWorld{t: t, pl: rollout.NewPlan(in, po), audit: &rollouttest.Log{}, done: make(chan struct{})}
	w.fleet = rollouttest.NewFleet(in.Hosts, oldImage, 20*time.Millisecond)
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := rollout.Begin(ctx, store, w.pl, newImage, time.Now()); err != nil {
		t.Fatal(err)
	}
	w.ctl = &rollout.Controller{Plan: w.pl, Store: store, Agents: w.fleet, Health: w.fleet.Health, Audit: w.audit, Indicators: ind}
	go func() { w.runErr = w.ctl.Run(ctx); close(w.done) }()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// waitFor polls the audit log until cond holds for it.
func (w *simWorld) waitFor(what string, cond func([]rollout.Event) bool) []rollout.Event {
	w.t.Helper()
	for {
		evs, err := w.audit.Events()
		if err != nil {
			w.t.Fatal(err)
		}
		if cond(evs) {
			return evs
		}
		select {
		case <-w.done:
			if evs, _ := w.audit.Events(); cond(evs) {
				return evs
			}
			w.t.Fatalf("controller stopped (%v) while waiting for %s", w.runErr, what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func has(a rollout.Action, host string) func([]rollout.Event) bool {
	return func(evs []rollout.Event) bool {
		return slices.ContainsFunc(evs, func(e rollout.Event) bool { return e.Action == a && (host == "" || e.Host == host) })
	}
}

func first(evs []rollout.Event, f func(rollout.Event) bool) (rollout.Event, int) {
	for i, e := range evs {
		if f(e) {
			return e, i
		}
	}
	return rollout.Event{}, -1
}

// checkBudgets replays the audit log: hosts count against their sets from
// their start until they fail or finish; unavailable(host, i) says
// whether host was Unavailable at event i. No set may ever go over.
func checkBudgets(t *testing.T, pl *rollout.Plan, evs []rollout.Event, unavailable func(host string, i int) bool) {
	t.Helper()
	active := map[string]bool{}
	for i, e := range evs {
		switch e.Action {
		case rollout.Start:
			if active[e.Host] {
				t.Fatalf("event %d: %s started twice without finishing", i, e.Host)
			}
			active[e.Host] = true
		case rollout.Fail, rollout.Finish:
			delete(active, e.Host)
		case rollout.Resumed: // a restarted controller restates who is at work
			active = map[string]bool{}
			for _, h := range e.Hosts {
				active[h] = true
			}
		}
		used := map[string]int{}
		for _, h := range pl.Inv.Hosts {
			if active[h.Name] || unavailable(h.Name, i) {
				for _, s := range h.Sets {
					used[s]++
				}
			}
		}
		for s, n := range used {
			if n > pl.Budget(s) {
				t.Fatalf("event %d (%s %s at %s): set %s has %d hosts unavailable, budget %d", i, e.Action, e.Host, e.Time.Format("15:04:05.000"), s, n, pl.Budget(s))
			}
		}
	}
}

// TestFleetSimulation rolls an image over 1,000 fake agents in 40 sets
// and 3 colos, with indicators from a real Prometheus and Alertmanager,
// and checks the invariants from the audit log and the agents' records.
func TestFleetSimulation(t *testing.T) {
	stack := promtest.Start(t, indicatorRules)
	const (
		blocked  = "s01-h05" // Blocked by an alert until the test clears it
		silenced = "s02-h06" // Blocked by an alert that is silenced
		unavail  = "s03-h07" // Unavailable until the test clears it
		fail1    = "s04-h03" // health fails: freezes s04
		fail2    = "s05-h03" // health fails: past the limit of 1, halt
	)
	ex := stack.Exporter
	ex.Set(series(blocked, rollout.Blocked), 1)
	ex.Set(series(silenced, rollout.Blocked), 1)
	ex.Set(series(unavail, rollout.Unavailable), 1)
	stack.Silence("host", silenced)
	src := &rollout.AlertSource{Sources: config.IndicatorSources{Prometheus: stack.PrometheusURL(), Alertmanager: stack.AlertmanagerURL(),
		KindKey: "ingot_indicator", HostLabel: "host", Timeout: 2 * time.Second}}
	ctx := context.Background()
	for { // Prometheus fires, Alertmanager holds the silenced one
		ind := src.Read(ctx)
		if len(ind.Hosts[blocked]) > 0 && len(ind.Hosts[unavail]) > 0 && stack.Suppressed(silenced) && len(src.Read(ctx).Hosts[silenced]) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	const interval = 50 * time.Millisecond
	pol := `
interval: 50ms
canary: {colos: [c0], bake: 300ms}
waves: [{size: 1 per set, bake: 200ms}, {size: 25%, bake: 100ms}, {size: 100%}]
max_unavailable: 10%
cooldown: 100ms
failures: {limit: 1, rollback: true}
health: {deadline: 200ms}
`
	w := startSim(t, simInventory(40, 25), pol, src.Read)
	if n := len(w.pl.Inv.Hosts); n != 1000 {
		t.Fatalf("%d hosts", n)
	}
	for _, h := range []string{fail1, fail2} {
		w.fleet.Do(h, func(a *rollouttest.Agent) { a.BadHealth = true })
	}
	// Halt: the second failure is past the limit.
	evs := w.waitFor("the halt", has(rollout.Halt, ""))
	haltAt := len(evs)
	time.Sleep(5 * interval)
	for _, h := range []string{fail1, fail2} {
		if a := w.fleet.Agent(h); a.Image != oldImage || a.Rollbacks != 1 {
			t.Errorf("%s after its failure: image %s, %d rollbacks; want rolled back to the old image", h, a.Image, a.Rollbacks)
		}
		w.fleet.Do(h, func(a *rollouttest.Agent) { a.BadHealth = false })
	}
	// Clear the indicators, wait until the sources agree.
	cleared := time.Now()
	ex.Set(series(blocked, rollout.Blocked), 0)
	ex.Set(series(unavail, rollout.Unavailable), 0)
	for {
		ind := src.Read(ctx)
		if len(ind.Hosts[blocked]) == 0 && len(ind.Hosts[unavail]) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Prometheus down: the retries clear the halt, yet nothing starts.
	stack.StopPrometheus()
	down := time.Now()
	for _, h := range []string{fail1, fail2} {
		if err := w.ctl.Command(ctx, "retry", h); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(10 * interval)
	evs, _ = w.audit.Events()
	for _, e := range evs[haltAt:] {
		if e.Action == rollout.Start {
			t.Fatalf("%s started at %s after the halt, with Prometheus down since %s", e.Host, e.Time.Format("15:04:05.000"), down.Format("15:04:05.000"))
		}
	}
	if !slices.ContainsFunc(evs, func(e rollout.Event) bool {
		return e.Action == rollout.Wait && strings.Contains(e.Reason, "indicators unknown: prometheus")
	}) {
		t.Errorf("no host waited for the indicators while Prometheus was down")
	}
	upAt := len(evs)
	stack.StartPrometheus()
	w.waitFor("completion", func(evs []rollout.Event) bool {
		s := w.ctl.Snapshot()
		return s.Complete
	})
	evs, _ = w.audit.Events()

	// Every host at the new image; synced once, the failed ones twice.
	for _, h := range w.pl.Inv.Hosts {
		a := w.fleet.Agent(h.Name)
		want := 1
		if h.Name == fail1 || h.Name == fail2 {
			want = 2
		}
		if a.Image != newImage || len(a.Syncs) != want {
			t.Fatalf("%s: at %s after %d syncs, want %s after %d", h.Name, a.Image, len(a.Syncs), newImage, want)
		}
	}
	// No set over budget; the Unavailable host counted until cleared.
	unavailUntil, _ := first(evs, func(e rollout.Event) bool { return e.Time.After(cleared) })
	checkBudgets(t, w.pl, evs, func(h string, i int) bool { return h == unavail && evs[i].Time.Before(unavailUntil.Time) })
	// Canary colo first, baked.
	stage0, _ := first(evs, func(e rollout.Event) bool { return e.Action == rollout.StageDone && e.Stage == 0 })
	firstOther, _ := first(evs, func(e rollout.Event) bool { return e.Action == rollout.Start && e.Stage > 0 })
	if stage0.Time.IsZero() || firstOther.Time.Before(stage0.Time.Add(300*time.Millisecond)) {
		t.Errorf("canary stage done at %v, first other host started at %v: not baked 300ms", stage0.Time, firstOther.Time)
	}
	for _, e := range evs {
		if e.Action == rollout.Finish && e.Stage == 0 && e.Time.After(stage0.Time) {
			t.Errorf("canary host %s finished after its stage was done", e.Host)
		}
	}
	// The blocked host waited, blocked, and started only after the clear.
	st, _ := first(evs, func(e rollout.Event) bool { return e.Action == rollout.Start && e.Host == blocked })
	if st.Time.Before(cleared) {
		t.Errorf("%s started at %v before its alert was cleared at %v", blocked, st.Time, cleared)
	}
	if _, i := first(evs, func(e rollout.Event) bool {
		return e.Action == rollout.Wait && e.Host == blocked && strings.Contains(e.Reason, "blocked: ")
	}); i < 0 {
		t.Errorf("%s never waited as blocked", blocked)
	}
	if e, i := first(evs, func(e rollout.Event) bool {
		return e.Action == rollout.Wait && e.Host == silenced && strings.Contains(e.Reason, "alert IngotIndicator")
	}); i >= 0 {
		t.Errorf("the silenced alert held %s back: %+v", silenced, e)
	}
	if _, i := first(evs, func(e rollout.Event) bool {
		return e.Action == rollout.Wait && e.Host == unavail && strings.HasPrefix(e.Reason, "unavailable: ")
	}); i < 0 {
		t.Errorf("%s never waited as unavailable", unavail)
	}
	// The first failure froze s04: nothing there started until the retry.
	f1, fi := first(evs, func(e rollout.Event) bool { return e.Action == rollout.Fail && e.Host == fail1 })
	_, ri := first(evs, func(e rollout.Event) bool { return e.Action == rollout.Command && e.Host == fail1 })
	if fi < 0 || ri < fi {
		t.Fatalf("no failure or retry of %s", fail1)
	}
	for _, e := range evs[fi:ri] {
		if e.Action == rollout.Start && strings.HasPrefix(e.Host, "s04-") {
			t.Errorf("%s started at %v in set s04, frozen since %v", e.Host, e.Time, f1.Time)
		}
	}
	for _, e := range evs[upAt:] {
		if e.Action == rollout.Start && e.Time.Before(down) {
			t.Errorf("audit out of order: %+v", e)
		}
	}
	t.Logf("%d audit events; %d hosts; halted at event %d", len(evs), len(w.pl.Inv.Hosts), haltAt)
}
