package rollout_test

import (
	"context"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/rollout"
	"github.com/ingotfleet/ingot/rollout/boltstore"
	"github.com/ingotfleet/ingot/rollout/config"
	"github.com/ingotfleet/ingot/rollout/rollouttest"
)

func benchPlan(b *testing.B, pol string) *rollout.Plan {
	b.Helper()
	in, err := config.ParseInventory("inventory.yaml", []byte(simInventory(400, 25)))
	if err != nil {
		b.Fatal(err)
	}
	po, err := config.ParsePolicy("policy.yaml", []byte(pol), in)
	if err != nil {
		b.Fatal(err)
	}
	return rollout.NewPlan(in, po)
}

// BenchmarkDecide10k: one evaluation over 10,000 hosts in 400 sets, in
// the middle of the first wave.
func BenchmarkDecide10k(b *testing.B) {
	pl := benchPlan(b, "canary: {colos: [c0]}\nwaves: [{size: 25%}]\n")
	st := &rollout.State{Hosts: map[string]rollout.HostState{}, StageDone: map[int]time.Time{0: time.Now().Add(-time.Hour)}}
	for _, n := range pl.Stages[0] {
		st.Hosts[n] = rollout.HostState{Phase: rollout.Done}
	}
	for i, n := range pl.Stages[1] {
		if i%3 == 0 {
			st.Hosts[n] = rollout.HostState{Phase: rollout.Done}
		}
	}
	now := time.Now()
	decisions := 0
	b.ResetTimer()
	for b.Loop() {
		out := rollout.Decide(pl, st, rollout.Indicators{}, nil, now)
		decisions += len(out.Decisions)
	}
	b.ReportMetric(float64(decisions)/b.Elapsed().Seconds(), "decisions/s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkController10k rolls an image over 10,000 fake agents in 400
// sets with the state in bbolt, and reports the controller process's CPU
// and memory while rolling and while idle (paused), and how many
// evaluation intervals pass from a failed health gate to the halt.
// It runs once whatever b.N is.
func BenchmarkController10k(b *testing.B) {
	const interval = 200 * time.Millisecond
	pl := benchPlan(b, `
interval: 200ms
canary: {colos: [c0], bake: 200ms}
waves: [{size: 1 per set}, {size: 100%}]
max_unavailable: 10%
cooldown: 200ms
failures: {limit: 0}
health: {deadline: 100ms}
`)
	store, err := boltstore.Open(filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := rollout.Begin(ctx, store, pl, newImage, time.Now()); err != nil {
		b.Fatal(err)
	}
	fleet := rollouttest.NewFleet(pl.Inv.Hosts, oldImage, 100*time.Millisecond)
	audit := &rollouttest.Log{}
	ctl := &rollout.Controller{Plan: pl, Store: store, Agents: fleet, Health: fleet.Health, Audit: audit}
	done := make(chan error, 1)
	var peak uint64
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse+ms.StackInuse)
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	go func() { done <- ctl.Run(ctx) }()
	// Roll until half the fleet is done, then fail one host: the halt.
	half := len(pl.Inv.Hosts) / 2
	for {
		sample()
		s := ctl.Snapshot()
		n := 0
		for _, h := range s.Hosts {
			if h.Phase == rollout.Done {
				n++
			}
		}
		if n >= half {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	rolled, cpuRolling := time.Since(start), cpuTime()-cpu0
	// The last host of the last stage has not started yet: it will fail.
	last := pl.Stages[len(pl.Stages)-1]
	victim := last[len(last)-1]
	fleet.Do(victim, func(a *rollouttest.Agent) { a.BadHealth = true })
	var failAt, haltAt time.Time
	for haltAt.IsZero() {
		sample()
		evs, _ := audit.Events()
		for _, e := range evs {
			if e.Action == rollout.Fail && failAt.IsZero() {
				failAt = e.Time
			}
			if e.Action == rollout.Halt {
				haltAt = e.Time
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Idle: halted, hosts at work finished; the controller keeps
	// evaluating every interval.
	time.Sleep(2 * time.Second)
	idleStart, idleCPU0 := time.Now(), cpuTime()
	time.Sleep(5 * time.Second)
	sample()
	idleCPU, idleWall := cpuTime()-idleCPU0, time.Since(idleStart)
	b.StopTimer()
	cancel()
	<-done
	counts := ctl.Counts()
	total := 0
	for _, n := range counts {
		total += n
	}
	b.ReportMetric(float64(len(pl.Inv.Hosts)), "hosts")
	b.ReportMetric(rolled.Seconds(), "s-to-half")
	b.ReportMetric(100*cpuRolling.Seconds()/rolled.Seconds(), "%cpu-rolling")
	b.ReportMetric(100*idleCPU.Seconds()/idleWall.Seconds(), "%cpu-idle")
	b.ReportMetric(float64(peak)/(1<<20), "MiB-peak")
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "decisions/s")
	b.ReportMetric(float64(haltAt.Sub(failAt))/float64(interval), "intervals-fail-to-halt")
}
