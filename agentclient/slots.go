package agentclient

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/ingotfleet/ingot/pusher/api"
)

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

// SlotWaitOptions shape SyncSlotAndWait.
type SlotWaitOptions struct {
	// Deadline bounds the sync, the switch, the reboot and the trial
	// boot together (default 30m).
	Deadline time.Duration
	// Poll is how often the agent is asked (default 1s).
	Poll time.Duration
	// Progress sees every status the agent answers.
	Progress func(api.Status)
}

// slotClient is what SyncSlotAndWait and RollbackSlotAndWait need of
// an agent client.
type slotClient interface {
	Status(ctx context.Context, addr string) (api.Status, error)
	Sync(ctx context.Context, addr string, req api.SyncRequest) (int64, error)
	SlotAction(ctx context.Context, addr, action string, out any) error
}

// RollbackSlotAndWait asks the agent at addr to switch back to its other
// slot (on trial, like any switch) and waits until that boot settles.
func RollbackSlotAndWait(ctx context.Context, c slotClient, addr string, o SlotWaitOptions) (*api.Result, error) {
	before, err := c.Status(ctx, addr)
	if err != nil {
		return nil, err
	}
	if before.Slots == nil {
		return nil, api.ErrNoSlots
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
func SyncSlotAndWait(ctx context.Context, c slotClient, addr string, req api.SyncRequest, o SlotWaitOptions) (*api.Result, error) {
	before, err := c.Status(ctx, addr)
	if err != nil {
		return nil, err
	}
	if before.Slots == nil {
		return nil, api.ErrNoSlots
	}
	req.Slot, req.Switch = api.SlotInactive, true
	run, err := c.Sync(ctx, addr, req)
	if err != nil {
		return nil, err
	}
	return waitSlotSwitch(ctx, c, addr, run, before.Slots.Switches, req.Image, o)
}

// waitSlotSwitch polls the agent until switch base+1 (made by run, if
// run is not 0) settles; see SlotSyncOutcome.
func waitSlotSwitch(ctx context.Context, c slotClient, addr string, run int64, base int, image string, o SlotWaitOptions) (*api.Result, error) {
	if o.Deadline <= 0 {
		o.Deadline = 30 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	deadline := time.Now().Add(o.Deadline)
	var res *api.Result
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
					res = &api.Result{Image: s.Image}
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
