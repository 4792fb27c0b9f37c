package pusher

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ingotfleet/ingot/images"
)

// SlotManager does the agent's slot work (package slots implements it;
// the agent only routes to it).
type SlotManager interface {
	// SyncSlot writes image d into the slot that is not booted, carries
	// the host's configuration over and, with switchAfter, switches to it.
	SyncSlot(ctx context.Context, d images.Digest, src Source, opts SyncOptions, switchAfter bool) Result
	// Handler serves /v1/slots/ (status, switch, commit, rollback).
	Handler() http.Handler
	// Summary is the slots' part of GET /v1/status (read from the
	// slots' state; never waits for a running slot sync).
	Summary() *SlotSummary
}

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

// SlotWaitOptions shape SyncSlotAndWait.
type SlotWaitOptions struct {
	// Deadline bounds the sync, the switch, the reboot and the trial
	// boot together (default 30m).
	Deadline time.Duration
	// Poll is how often the agent is asked (default 1s).
	Poll time.Duration
	// Progress sees every status the agent answers.
	Progress func(Status)
}

// slotClient is what SyncSlotAndWait and RollbackSlotAndWait need of
// an agent client.
type slotClient interface {
	Status(ctx context.Context, addr string) (Status, error)
	Sync(ctx context.Context, addr string, req SyncRequest) (int64, error)
	SlotAction(ctx context.Context, addr, action string, out any) error
}

// RollbackSlotAndWait asks the agent at addr to switch back to its other
// slot (on trial, like any switch) and waits until that boot settles.
func RollbackSlotAndWait(ctx context.Context, c slotClient, addr string, o SlotWaitOptions) (*Result, error) {
	before, err := c.Status(ctx, addr)
	if err != nil {
		return nil, err
	}
	if before.Slots == nil {
		return nil, ErrNoSlots
	}
	var out struct{}
	if err := c.SlotAction(ctx, addr, "rollback", &out); err != nil {
		return nil, err
	}
	res, err := waitSlotSwitch(ctx, c, addr, 0, before.Slots.Switches, "", o)
	if res != nil {
		res.Rollback = true
	}
	return res, err
}

// SyncSlotAndWait asks the agent at addr to sync its inactive slot to
// req.Image and switch, then waits until the trial boot settles (the
// agent unreachable meanwhile counts as rebooting). The result is the
// slot sync's, as the agent reported it.
func SyncSlotAndWait(ctx context.Context, c slotClient, addr string, req SyncRequest, o SlotWaitOptions) (*Result, error) {
	if o.Deadline <= 0 {
		o.Deadline = 30 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	before, err := c.Status(ctx, addr)
	if err != nil {
		return nil, err
	}
	if before.Slots == nil {
		return nil, ErrNoSlots
	}
	req.Slot, req.Switch = SlotInactive, true
	run, err := c.Sync(ctx, addr, req)
	if err != nil {
		return nil, err
	}
	return waitSlotSwitch(ctx, c, addr, run, before.Slots.Switches, req.Image, o)
}

// waitSlotSwitch polls the agent until switch base+1 (made by run, if
// run is not 0) settles; see SlotSyncOutcome.
func waitSlotSwitch(ctx context.Context, c slotClient, addr string, run int64, base int, image string, o SlotWaitOptions) (*Result, error) {
	if o.Deadline <= 0 {
		o.Deadline = 30 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	deadline := time.Now().Add(o.Deadline)
	var res *Result
	var last error
	for {
		s, err := c.Status(ctx, addr)
		if err == nil {
			if o.Progress != nil {
				o.Progress(s)
			}
			if run > 0 && s.Last != nil && s.Last.Image == image && (s.LastID >= run || s.RunID < run) {
				res = s.Last // the run's, or after the reboot the slot's own record of it
			}
			done, err := s.SlotSyncOutcome(run, base, image)
			if done {
				if res == nil {
					res = &Result{Image: s.Image}
				}
				if s.Slots != nil {
					res.Slot = s.Slots.Booted
				}
				if err != nil {
					r := *res
					r.OK, r.Error = false, err.Error()
					return &r, nil
				}
				r := *res
				r.OK, r.Error, r.Switched = true, "", true
				return &r, nil
			}
			last = nil
		} else {
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return res, fmt.Errorf("the slot switch did not settle within %v: the agent does not answer: %w", o.Deadline, last)
			}
			return res, fmt.Errorf("the slot switch did not settle within %v", o.Deadline)
		}
		t := time.NewTimer(o.Poll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return res, ctx.Err()
		}
	}
}

// SlotInactive is the value of SyncRequest.Slot naming the slot that is
// not booted (the only slot a sync may write).
const SlotInactive = "inactive"

// ErrNoSlots is returned for slot requests to an agent without slots.
var ErrNoSlots = errors.New("pusher: this agent has no slots configured")

func (a *Agent) checkSlotRequest(req SyncRequest) error {
	if req.Slot == "" && !req.Switch {
		return nil
	}
	if a.Slots == nil {
		return ErrNoSlots
	}
	if req.Slot != SlotInactive {
		return errors.New(`slot: a sync writes only the slot that is not booted: give slot "inactive"`)
	}
	if req.DryRun {
		return errors.New("slot: dry runs of slot syncs are not supported")
	}
	return nil
}

func (a *Agent) slotRoutes(mux *http.ServeMux) {
	if a.Slots == nil {
		return
	}
	mux.Handle("/v1/slots/", a.Slots.Handler())
}

// SlotStatus reads an agent's slots (GET /v1/slots/status) into out
// (a slots.Status).
func (c *Client) SlotStatus(ctx context.Context, addr string, out any) error {
	return c.call(ctx, http.MethodGet, addr, "/v1/slots/status", nil, out)
}

// SlotAction asks an agent to "switch", "commit" or "rollback" its slots;
// out receives the slots' status after it.
func (c *Client) SlotAction(ctx context.Context, addr, action string, out any) error {
	return c.call(ctx, http.MethodPost, addr, "/v1/slots/"+action, struct{}{}, out)
}

// slotStatus adds the slots' summary to a status; while a slot sync
// runs, its progress is the status's progress.
func (a *Agent) slotStatus(s *Status) {
	if a.Slots == nil {
		return
	}
	s.Slots = a.Slots.Summary()
	if p := s.Slots.Progress; p != nil {
		s.Progress = *p
		s.Progress.Phase = "slot " + s.Slots.Phase
	}
}
