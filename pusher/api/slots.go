package api

import (
	"errors"
	"fmt"
)

// SlotSummary is the slots' part of GET /v1/status: enough for a
// controller to follow a slot sync, the switch, the reboot and the trial
// boot, across the reboot (it is read from the slots' state on the data
// partition, which both slots see).
type SlotSummary struct {
	Booted  string `json:"booted"`
	Default string `json:"default,omitempty"`
	// Switches counts the switches ever made on the host; every trial
	// and its outcome carry their number.
	Switches int `json:"switches"`
	// Trial is the switch waiting for its first healthy boot.
	Trial *SlotOutcome `json:"trial,omitempty"`
	// Committed is the last switch that came up healthy, Failed the
	// last one that did not.
	Committed *SlotOutcome `json:"committed,omitempty"`
	Failed    *SlotOutcome `json:"failed,omitempty"`
	// Writing is the image a slot sync is writing now; Phase is its step
	// (snapshot, sync, carry, switch) and Progress the sync engine's.
	Writing  string            `json:"writing,omitempty"`
	Phase    string            `json:"phase,omitempty"`
	Progress *ProgressSnapshot `json:"progress,omitempty"`
	Error    string            `json:"error,omitempty"` // the slots' state could not be read
}

// SlotOutcome is one switch: its number, the slot and image switched to,
// the downtime of a committed one, the reason of a failed one.
type SlotOutcome struct {
	N        int     `json:"n"`
	Slot     string  `json:"slot"`
	Image    string  `json:"image,omitempty"`
	Downtime float64 `json:"downtime_seconds,omitempty"`
	Reason   string  `json:"reason,omitempty"`
}

// SlotSyncOutcome judges, from one status of its agent, a slot sync with
// switch that got run id run when the host's switch counter stood at
// base: done with a nil error once the trial boot of that switch
// committed with the agent at image, done with an error once the sync,
// the switch or the trial failed, not done while any of them is under
// way (the agent may not answer at all while the host reboots).
func (s Status) SlotSyncOutcome(run int64, base int, image string) (done bool, err error) {
	sl := s.Slots
	if sl == nil {
		return true, ErrNoSlots
	}
	if sl.Error != "" {
		return true, fmt.Errorf("slots: %s", sl.Error)
	}
	n := base + 1
	switch {
	case sl.Committed != nil && sl.Committed.N == n:
		if image != "" && s.Image != image {
			return true, fmt.Errorf("slot %s committed, but the agent runs %s, not %s", sl.Committed.Slot, s.Image, image)
		}
		return true, nil
	case sl.Failed != nil && sl.Failed.N == n:
		return true, fmt.Errorf("the switch to slot %s failed: %s", sl.Failed.Slot, sl.Failed.Reason)
	case sl.Switches > n:
		return true, fmt.Errorf("switch %d came before switch %d settled", sl.Switches, n)
	case sl.Switches == n:
		return false, nil // the reboot or the trial's checks
	}
	switch {
	case run > 0 && s.LastID >= run && !(s.Syncing && s.RunID == run):
		if s.Last != nil && !s.Last.OK {
			return true, fmt.Errorf("slot sync failed: %s", s.Last.Error)
		}
		return true, errors.New("the slot sync finished without switching")
	case s.RunID < run:
		return true, errors.New("the agent restarted during the slot sync: its run is lost")
	}
	return false, nil
}

// SlotInactive is the value of SyncRequest.Slot naming the slot that is
// not booted (the only slot a sync may write).
const SlotInactive = "inactive"

// ErrNoSlots is returned for slot requests to an agent without slots.
var ErrNoSlots = errors.New("pusher: this agent has no slots configured")
