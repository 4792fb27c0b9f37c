package slots

import (
	"context"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher"
	"github.com/ingotfleet/ingot/pusher/slots/boot"
)

// fakeClock reads from times in turn and then keeps the last.
func fakeClock(times ...time.Time) func() time.Time {
	return func() time.Time {
		t := times[0]
		if len(times) > 1 {
			times = times[1:]
		}
		return t
	}
}

// The downtime of a switch and of a rollback is the switch to the checks
// passing, and its record says where it went: the switch to the new
// kernel's start (shutdown, firmware, bootloader), the kernel to the agent,
// the agent to the checks. QEMU's rollback of 398.6 s (docs/BENCHMARKS.md)
// was one number with nothing to tell a slow firmware from a slow boot or
// a late agent; each boot here is given its own clocks.
func TestDowntimePhases(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	dA, dB := f.publish(t, imageA()), f.publish(t, imageB())
	conf := f.config(t, "  health: {deadline: 5s, checks: [{command: [true]}]}\n")
	t0 := time.Date(2026, 12, 7, 19, 45, 0, 0, time.UTC)
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	fb := &boot.FileBoot{Path: f.bootFile}

	m := f.manager(t, conf)
	if res := m.Agent.Syncer.Sync(ctx, dA, f.source(t), pusher.SyncOptions{}); !res.OK {
		t.Fatal(res.Error)
	}
	if _, err := m.AtBoot(ctx); err != nil {
		t.Fatal(err)
	}
	m.clock = fakeClock(sec(0))
	if res := m.SyncSlot(ctx, dB, f.source(t), pusher.SyncOptions{}, true); !res.OK || !res.Switched {
		t.Fatalf("slot sync: %+v", res)
	}

	// reboot reboots into the next slot, whose kernel starts at kernel and
	// whose agent starts at agent; the checks pass at healthy.
	reboot := func(want string, kernel, agent, healthy float64) *Switched {
		t.Helper()
		if s, _ := fb.Boot(); s != want {
			t.Fatalf("booted %s, want %s", s, want)
		}
		m = f.manager(t, conf)
		m.kernelStart = func() (time.Time, error) { return sec(kernel), nil }
		m.clock = fakeClock(sec(agent), sec(healthy))
		if att, err := m.AtBoot(ctx); att != nil || err != nil {
			t.Fatalf("trial of %s: %+v %v", want, att, err)
		}
		st, err := m.Status()
		if err != nil || st.Default != want || st.LastSwitch == nil || st.LastSwitch.Phases == nil {
			t.Fatalf("after the commit of %s: %+v %v", want, st.State, err)
		}
		return st.LastSwitch
	}
	check := func(what string, sw *Switched, downtime float64, p Phases) {
		t.Helper()
		if sw.Downtime != downtime || *sw.Phases != p {
			t.Errorf("%s: downtime %.1f s in %+v, want %.1f s in %+v", what, sw.Downtime, *sw.Phases, downtime, p)
		}
		if sum := sw.Phases.Down + sw.Phases.Boot + sw.Phases.Checks; sum != sw.Downtime {
			t.Errorf("%s: the phases add up to %.1f s, the downtime is %.1f s", what, sum, sw.Downtime)
		}
	}
	// A → B: 12 s to b's kernel, 25 s to its agent, 1 s of checks.
	check("switch A → B", reboot(boot.B, 12, 37, 38), 38, Phases{Down: 12, Boot: 25, Checks: 1})

	// The rollback from b, much later: its downtime starts at its own
	// switch, not at the earlier one; here the firmware is what is slow.
	m.clock = fakeClock(sec(1000))
	if err := m.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	check("rollback B → A", reboot(boot.A, 1350, 1375, 1376.5), 376.5, Phases{Down: 350, Boot: 25, Checks: 1.5})

	// A commit by hand (ingot slot commit) knows no agent start: the
	// downtime alone.
	m.clock = fakeClock(sec(2000))
	if err := m.Switch(ctx); err != nil {
		t.Fatal(err)
	}
	fb.Boot()
	m = f.manager(t, conf)
	m.clock = fakeClock(sec(2040))
	if err := m.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.Status(); st.LastSwitch == nil || st.LastSwitch.Downtime != 40 || st.LastSwitch.Phases != nil {
		t.Errorf("commit by hand: %+v", st.LastSwitch)
	}
}
