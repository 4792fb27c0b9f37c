package api

import (
	"strings"
	"testing"
)

// SlotSyncOutcome on the statuses an agent answers through a slot sync,
// its switch, the reboot and the trial boot.
func TestSlotSyncOutcome(t *testing.T) {
	const img, old = "sha256:new", "sha256:old"
	const run, base = 3, 4 // the sync's run id; the switch counter before it
	sum := func(f func(*SlotSummary)) *SlotSummary {
		s := &SlotSummary{Booted: "a", Default: "a", Switches: base}
		if f != nil {
			f(s)
		}
		return s
	}
	for _, c := range []struct {
		name string
		s    Status
		done bool
		err  string
	}{
		{"no slots", Status{RunID: run}, true, "no slots configured"},
		{"syncing", Status{Image: old, RunID: run, LastID: run - 1, Syncing: true, Slots: sum(nil)}, false, ""},
		{"sync failed", Status{Image: old, RunID: run, LastID: run, Last: &Result{Error: "fetch: 404"}, Slots: sum(nil)}, true, "slot sync failed: fetch: 404"},
		{"finished without switching", Status{Image: old, RunID: run, LastID: run, Last: &Result{OK: true}, Slots: sum(nil)}, true, "without switching"},
		{"agent restarted, run lost", Status{Image: old, Slots: sum(nil)}, true, "run is lost"},
		{"switched, rebooting", Status{Image: old, RunID: run, LastID: run, Last: &Result{OK: true}, Slots: sum(func(s *SlotSummary) {
			s.Switches = base + 1
			s.Trial = &SlotOutcome{N: base + 1, Slot: "b", Image: img}
		})}, false, ""},
		{"on trial after the reboot", Status{Image: img, Slots: sum(func(s *SlotSummary) {
			s.Booted, s.Switches = "b", base+1
			s.Trial = &SlotOutcome{N: base + 1, Slot: "b", Image: img}
		})}, false, ""},
		{"committed", Status{Image: img, Slots: sum(func(s *SlotSummary) {
			s.Booted, s.Default, s.Switches = "b", "b", base+1
			s.Committed = &SlotOutcome{N: base + 1, Slot: "b", Image: img, Downtime: 42}
		})}, true, ""},
		{"committed at another image", Status{Image: old, Slots: sum(func(s *SlotSummary) {
			s.Booted, s.Default, s.Switches = "b", "b", base+1
			s.Committed = &SlotOutcome{N: base + 1, Slot: "b"}
		})}, true, "not sha256:new"},
		{"an earlier commit does not count", Status{Image: img, Slots: sum(func(s *SlotSummary) {
			s.Switches = base + 1
			s.Committed = &SlotOutcome{N: base, Slot: "a", Image: img}
			s.Trial = &SlotOutcome{N: base + 1, Slot: "b", Image: img}
		})}, false, ""},
		{"trial failed, back on a", Status{Image: old, Slots: sum(func(s *SlotSummary) {
			s.Switches = base + 1
			s.Failed = &SlotOutcome{N: base + 1, Slot: "b", Image: img, Reason: "health checks failed: x"}
		})}, true, "the switch to slot b failed: health checks failed: x"},
		{"an earlier failure does not count", Status{Image: old, RunID: run, LastID: run - 1, Syncing: true, Slots: sum(func(s *SlotSummary) {
			s.Failed = &SlotOutcome{N: base, Slot: "b", Image: img, Reason: "old"}
		})}, false, ""},
		{"switched again before settling", Status{Image: old, Slots: sum(func(s *SlotSummary) { s.Switches = base + 2 })}, true, "before switch 5 settled"},
		{"unreadable slots state", Status{Slots: &SlotSummary{Error: "slots state: bad json"}}, true, "bad json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			done, err := c.s.SlotSyncOutcome(run, base, img)
			if done != c.done || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("got done=%v err=%v; want done=%v err containing %q", done, err, c.done, c.err)
			}
		})
	}
}
