package rollout_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/rollout"
	"github.com/ingotfleet/ingot/rollout/config"
	"github.com/ingotfleet/ingot/rollout/etcdstore"
	"github.com/ingotfleet/ingot/rollout/etcdstore/etcdtest"
	"github.com/ingotfleet/ingot/rollout/rollouttest"
)

// TestTwoControllersOnEtcd runs two controllers on one real etcd: only
// the leader acts; when the leader is cut off from etcd it stops acting,
// and the other takes over and completes the rollout without syncing any
// host twice or going over any budget.
func TestTwoControllersOnEtcd(t *testing.T) {
	srv := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, srv.Addr())
	ctx := context.Background()
	const ttl = 2 * time.Second
	open := func(endpoint, name string) *etcdstore.Store {
		s, err := etcdstore.Open(ctx, etcdstore.Config{Endpoints: []string{endpoint}, Prefix: "/test/two", Name: name, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { proxy.Heal(); s.Close() })
		return s
	}
	sa, sb := open(proxy.Endpoint(), "a"), open(srv.Endpoint(), "b")
	in, err := config.ParseInventory("inventory.yaml", []byte(simInventory(10, 20)))
	if err != nil {
		t.Fatal(err)
	}
	po, err := config.ParsePolicy("policy.yaml", []byte(`
interval: 30ms
canary: {colos: [c0], bake: 50ms}
max_unavailable: 10%
cooldown: 50ms
`), in)
	if err != nil {
		t.Fatal(err)
	}
	pl := rollout.NewPlan(in, po)
	if err := sa.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rollout.Begin(ctx, sa, pl, newImage, time.Now()); err != nil {
		t.Fatal(err)
	}
	fleet := rollouttest.NewFleet(in.Hosts, oldImage, 30*time.Millisecond)
	logA, logB := &rollouttest.Log{}, &rollouttest.Log{}
	ctlA := &rollout.Controller{Plan: pl, Store: sa, Elector: sa, Agents: fleet, Audit: logA}
	ctlB := &rollout.Controller{Plan: pl, Store: sb, Elector: sb, Agents: fleet, Audit: logB}
	ctxA, cancelA := context.WithCancel(ctx)
	defer cancelA()
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go func() { doneA <- ctlA.Run(ctxA) }()
	go func() { doneB <- ctlB.Run(ctx) }()
	atNew := func() int {
		n := 0
		for _, h := range in.Hosts {
			if fleet.Agent(h.Name).Image == newImage {
				n++
			}
		}
		return n
	}
	for atNew() < len(in.Hosts)/4 {
		time.Sleep(20 * time.Millisecond)
	}
	if evs, _ := logB.Events(); len(evs) > 0 || ctlB.Snapshot().Leading {
		t.Fatalf("the follower acted while the leader led: %+v", evs)
	}
	lost := sa.Lost()
	cut := time.Now()
	proxy.Cut()
	<-lost
	t.Logf("leader saw its loss %v after the cut, %d hosts at the new image", time.Since(cut).Round(time.Millisecond), atNew())
	if err := <-doneB; err != nil {
		t.Fatalf("the second controller: %v", err)
	}
	cancelA()
	<-doneA
	evA, _ := logA.Events()
	evB, _ := logB.Events()
	if len(evB) == 0 {
		t.Fatal("the second controller never acted")
	}
	t.Logf("took over %v after the cut (lease %v)", evB[0].Time.Sub(cut).Round(time.Millisecond), ttl)
	if last := evA[len(evA)-1]; !last.Time.Before(evB[0].Time) {
		t.Fatalf("the deposed leader acted at %v (%s %s), after the new one began at %v", last.Time, last.Action, last.Host, evB[0].Time)
	}
	for _, h := range in.Hosts {
		if a := fleet.Agent(h.Name); a.Image != newImage || len(a.Syncs) != 1 {
			t.Fatalf("%s: at %s after %d syncs", h.Name, a.Image, len(a.Syncs))
		}
	}
	all := append(slices.Clone(evA), evB...)
	// Hosts A had started and B finished count from A's start.
	checkBudgets(t, pl, all, func(string, int) bool { return false })
}
