package rollout

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/rollout/config"
)

const decideInventory = `hosts:
  - {name: a1, addr: "h:1", colo: ams, sets: [web]}
  - {name: a2, addr: "h:1", colo: ams, sets: [web]}
  - {name: f1, addr: "h:1", colo: fra, sets: [web]}
  - {name: f2, addr: "h:1", colo: fra, sets: [web]}
  - {name: f3, addr: "h:1", colo: fra, sets: [web]}
  - {name: d1, addr: "h:1", colo: fra, sets: [db]}
  - {name: d2, addr: "h:1", colo: fra, sets: [db]}
  - {name: d3, addr: "h:1", colo: lon, sets: [db]}
`

const decidePolicy = `
canary: {colos: [ams], bake: 10m}
waves: [{size: 1 per set, bake: 5m}, {size: 100%}]
max_unavailable: 1
sets: {web: {max_unavailable: 2}}
cooldown: 1m
failures: {limit: 1}
`

func mustInventory(t *testing.T, s string) *config.Inventory {
	t.Helper()
	inv, err := config.ParseInventory("inv.yaml", []byte(s))
	if err != nil {
		t.Fatalf("ParseInventory: %v", err)
	}
	return inv
}

func testPlan(t *testing.T) *Plan {
	t.Helper()
	inv := mustInventory(t, decideInventory)
	pol, err := config.ParsePolicy("pol.yaml", []byte(decidePolicy), inv)
	if err != nil {
		t.Fatal(err)
	}
	return NewPlan(inv, pol)
}

func TestPlanStages(t *testing.T) {
	pl := testPlan(t)
	got := fmt.Sprint(pl.Stages)
	if want := "[[a1 a2] [d1 f1] [d2 f2 d3 f3]]"; got != want {
		t.Fatalf("stages = %s, want %s", got, want)
	}
}

// summary writes the decisions as "action host: reason" lines, waits
// first by host.
func summary(out Outcome) string {
	var l []string
	for _, d := range out.Decisions {
		s := string(d.Action)
		if d.Host != "" {
			s += " " + d.Host
		} else {
			s += fmt.Sprintf(" stage %d", d.Stage)
		}
		if d.Action == Wait || d.Action == Halt {
			s += ": " + d.Reason
		}
		l = append(l, s)
	}
	slices.Sort(l)
	return strings.Join(l, "\n")
}

func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	done := HostState{Phase: Done}
	canaryDone := map[string]HostState{"a1": done, "a2": done}
	baked := map[int]time.Time{0: ago(11 * time.Minute)}
	with := func(m map[string]HostState, kv ...any) map[string]HostState {
		c := map[string]HostState{}
		for k, v := range m {
			c[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1].(HostState)
		}
		return c
	}
	sig := func(kv ...any) Indicators {
		ind := Indicators{Hosts: map[string][]Signal{}}
		for i := 0; i < len(kv); i += 2 {
			ind.Hosts[kv[i].(string)] = append(ind.Hosts[kv[i].(string)], Signal{Kind: kv[i+1].(Kind), Source: "alert X"})
		}
		return ind
	}
	cases := []struct {
		name  string
		st    State
		ind   Indicators
		held  map[string]string
		want  string
		stage int
	}{
		{name: "canary colo first, within the budget",
			want: "start a1\nstart a2"},
		{name: "canary syncing; nothing else starts",
			st:   State{Hosts: map[string]HostState{"a1": {Phase: Syncing}}},
			want: "start a2"},
		{name: "canary done: stage recorded, bake holds the wave",
			st:    State{Hosts: canaryDone},
			want:  "stage_done stage 0\nwait d1: stage 0 baking until 2026-12-07T12:10:00Z\nwait f1: stage 0 baking until 2026-12-07T12:10:00Z",
			stage: 1},
		{name: "baked: 1 per set",
			st:    State{Hosts: canaryDone, StageDone: baked},
			want:  "start d1\nstart f1",
			stage: 1},
		{name: "blocked host waits, the other starts",
			st:    State{Hosts: canaryDone, StageDone: baked},
			ind:   sig("f1", Blocked),
			want:  "start d1\nwait f1: blocked: alert X",
			stage: 1},
		{name: "unavailable host elsewhere takes the set's only slot",
			st:    State{Hosts: canaryDone, StageDone: baked},
			ind:   sig("d3", Unavailable),
			want:  "start f1\nwait d1: budget full: db 1/1",
			stage: 1},
		{name: "fleetlock holder takes a slot",
			st:    State{Hosts: canaryDone, StageDone: baked},
			held:  map[string]string{"d2": "fleetlock"},
			want:  "start f1\nwait d1: budget full: db 1/1",
			stage: 1},
		{name: "cooling host counts until its cooldown ends",
			st:    State{Hosts: with(canaryDone, "d2", HostState{Phase: Cooling, Since: ago(30 * time.Second)}), StageDone: baked},
			want:  "start f1\nwait d1: budget full: db 1/1",
			stage: 1},
		{name: "cooldown over: finished, slot free at once",
			st:    State{Hosts: with(canaryDone, "d2", HostState{Phase: Cooling, Since: ago(time.Minute)}), StageDone: baked},
			want:  "finish d2\nstart d1\nstart f1",
			stage: 1},
		{name: "failed host freezes its set",
			st:    State{Hosts: with(canaryDone, "d2", HostState{Phase: Failed}), StageDone: baked, Frozen: map[string]string{"db": "d2"}, Failures: 1},
			want:  "start f1\nwait d1: set db frozen: host d2 failed",
			stage: 1},
		{name: "past the failure limit: halt",
			st:    State{Hosts: canaryDone, StageDone: baked, Failures: 2},
			want:  "halt stage 1: 2 hosts failed, more than the limit of 1\nwait d1: rollout halted: 2 hosts failed, more than the limit of 1\nwait f1: rollout halted: 2 hosts failed, more than the limit of 1",
			stage: 1},
		{name: "indicators unknown: fail safe",
			st:    State{Hosts: canaryDone, StageDone: baked},
			ind:   Indicators{Down: "prometheus: connection refused"},
			want:  "wait d1: blocked: indicators unknown: prometheus: connection refused\nwait f1: blocked: indicators unknown: prometheus: connection refused",
			stage: 1},
		{name: "paused",
			st:   State{Paused: true},
			want: "wait a1: rollout paused\nwait a2: rollout paused"},
		{name: "maintenance required goes first",
			st:    State{Hosts: with(canaryDone, "d1", done, "f1", done, "f2", HostState{Phase: Syncing}), StageDone: map[int]time.Time{0: ago(time.Hour), 1: ago(time.Hour)}},
			ind:   sig("d3", MaintenanceRequired),
			want:  "start d3\nstart f3\nwait d2: budget full: db 1/1",
			stage: 2},
		{name: "complete",
			st:    State{Hosts: map[string]HostState{"a1": done, "a2": done, "f1": done, "f2": done, "f3": done, "d1": done, "d2": {Phase: Skipped}, "d3": done}, StageDone: map[int]time.Time{0: ago(time.Hour), 1: ago(time.Hour), 2: ago(time.Hour)}},
			want:  "",
			stage: 3},
	}
	pl := testPlan(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := c.st
			out := Decide(pl, &st, c.ind, c.held, now)
			if got := summary(out); got != c.want {
				t.Errorf("decisions:\n%s\nwant:\n%s", got, c.want)
			}
			if out.Stage != c.stage {
				t.Errorf("stage = %d, want %d", out.Stage, c.stage)
			}
			if c.name == "complete" && !out.Complete {
				t.Errorf("not complete")
			}
			for _, d := range out.Decisions {
				for _, u := range d.Budget {
					if d.Action == Start && u.Used > u.Max {
						t.Errorf("%s started over budget: %+v", d.Host, u)
					}
				}
			}
		})
	}
}
