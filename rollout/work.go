package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/rollout/config"
)

// A host's work, once Tick has started it: the sync (in place or through
// the inactive slot), the health gates, and on failure the host's
// failure, its sets frozen and (slot mode) the switch back.

// work takes one host from Syncing or Checking to Cooling or Failed.
func (c *Controller) work(ctx context.Context, name string) {
	defer c.wg.Done()
	defer func() {
		c.mu.Lock()
		delete(c.inflight, name)
		c.mu.Unlock()
	}()
	h, _ := c.Plan.Inv.Host(name)
	hs, image := c.hostState(name)
	if hs.Phase == Syncing {
		var note string
		var err error
		if c.Plan.Pol.Mode == config.ModeSlot {
			note, err = c.syncSlot(ctx, h, hs, image)
		} else {
			err = c.sync(ctx, h, hs, image)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.fail(ctx, h, err)
			return
		}
		if c.transition(ctx, name, func(_ *State, hs *HostState) bool {
			hs.Phase, hs.Since = Checking, c.now()
			return false
		}, Event{Time: c.now(), Decision: Decision{Action: Synced, Reason: "agent at " + image + note}}) != nil {
			return
		}
	}
	err := c.check(ctx, h)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		c.fail(ctx, h, err)
		return
	}
	// Not committed (leadership lost, the store down): the host stays
	// Checking, and the next Tick of whoever leads resumes its work.
	_ = c.transition(ctx, name, func(_ *State, hs *HostState) bool {
		hs.Phase, hs.Since = Cooling, c.now()
		return false
	}, Event{Time: c.now(), Decision: Decision{Action: Healthy, Reason: fmt.Sprintf("health gates passed; cooling down %v", c.Plan.Pol.Cooldown)}})
}

// status polls an agent until it answers or the health deadline passes.
func (c *Controller) status(ctx context.Context, h config.Host, deadline time.Time) (AgentStatus, error) {
	for {
		as, err := c.Agents.Status(ctx, h)
		if err == nil || c.now().After(deadline) || ctx.Err() != nil {
			return as, err
		}
		if !c.sleep(ctx, c.poll()) {
			return as, ctx.Err()
		}
	}
}

// sync makes sure the agent ran exactly one sync for this step and
// waits for its result. A request that reached the agent before a
// controller crash shows as a run id above Base and is not sent again.
func (c *Controller) sync(ctx context.Context, h config.Host, hs HostState, image string) error {
	deadline := c.now().Add(c.Plan.Pol.Health.Deadline)
	as, err := c.status(ctx, h, deadline)
	if err != nil {
		return fmt.Errorf("agent unreachable: %w", err)
	}
	var run int64
	switch {
	case as.RunID > hs.Base:
		run = hs.Base + 1
	default:
		run, err = c.Agents.Sync(ctx, h, image)
		if err != nil {
			return fmt.Errorf("starting the sync: %w", err)
		}
	}
	for {
		as, err := c.status(ctx, h, c.now().Add(c.Plan.Pol.Health.Deadline))
		if err != nil {
			return fmt.Errorf("agent unreachable during the sync: %w", err)
		}
		if as.LastID >= run && !(as.Syncing && as.RunID == run) {
			if !as.LastOK {
				return fmt.Errorf("sync failed: %s", as.LastErr)
			}
			if as.Image != image {
				return fmt.Errorf("agent at %s after the sync, not %s", as.Image, image)
			}
			return nil
		}
		if !c.sleep(ctx, c.poll()) {
			return ctx.Err()
		}
	}
}

// syncSlot has the agent write its inactive slot and switch to it, and
// waits until the trial boot settles: the host stays at work (Syncing)
// through the sync, the reboot and the trial's checks, and fails when
// the trial fails (the host is then back on its old slot by itself) or
// does not settle within the slot deadline, counted from the start. A
// request that reached the agent before a controller crash shows as a
// run id above Base or a switch counter above SlotBase and is not sent
// again.
func (c *Controller) syncSlot(ctx context.Context, h config.Host, hs HostState, image string) (string, error) {
	sa, ok := c.Agents.(SlotAgents)
	if !ok {
		return "", errors.New("these agents cannot do slot syncs")
	}
	deadline := hs.Since.Add(c.Plan.Pol.SlotDeadline)
	as, err := c.status(ctx, h, deadline)
	if err != nil {
		return "", fmt.Errorf("agent unreachable: %w", err)
	}
	if as.Slots == nil {
		return "", fmt.Errorf("%w (policy mode: slot)", api.ErrNoSlots)
	}
	run := hs.Base + 1
	if as.RunID <= hs.Base && as.Slots.Switches <= hs.SlotBase {
		if run, err = sa.SyncSlot(ctx, h, image); err != nil {
			return "", fmt.Errorf("starting the slot sync: %w", err)
		}
	}
	for {
		as, err := c.Agents.Status(ctx, h)
		if err == nil {
			done, err := as.pusherStatus().SlotSyncOutcome(run, hs.SlotBase, image)
			if done && err == nil {
				cm := as.Slots.Committed
				return fmt.Sprintf("; slot %s committed after %.1fs of downtime", cm.Slot, cm.Downtime), nil
			}
			if done {
				return "", err
			}
		}
		if c.now().After(deadline) {
			if err != nil {
				return "", fmt.Errorf("the slot switch did not settle within %v: agent unreachable: %w", c.Plan.Pol.SlotDeadline, err)
			}
			return "", fmt.Errorf("the slot switch did not settle within %v", c.Plan.Pol.SlotDeadline)
		}
		if !c.sleep(ctx, c.poll()) {
			return "", ctx.Err()
		}
	}
}

// check runs the health gates until they pass or the deadline passes.
func (c *Controller) check(ctx context.Context, h config.Host) error {
	if c.Health == nil {
		return nil
	}
	deadline := c.now().Add(c.Plan.Pol.Health.Deadline)
	for {
		err := c.Health(ctx, h)
		if err == nil {
			return nil
		}
		if !c.now().Before(deadline) {
			return fmt.Errorf("health gates failing at the deadline (%v): %w", c.Plan.Pol.Health.Deadline, err)
		}
		if !c.sleep(ctx, c.poll()) {
			return ctx.Err()
		}
	}
}

func (c *Controller) fail(ctx context.Context, h config.Host, cause error) {
	halted := ""
	err := c.transition(ctx, h.Name, func(st *State, hs *HostState) bool {
		hs.Phase, hs.Since, hs.Error = Failed, c.now(), cause.Error()
		st.Failures++
		if st.Frozen == nil {
			st.Frozen = map[string]string{}
		}
		for _, s := range h.Sets {
			if _, ok := st.Frozen[s]; !ok {
				st.Frozen[s] = h.Name
			}
		}
		// Past the limit the rollout halts in the same commit, not at
		// the next evaluation.
		if st.Halted == "" && st.Failures > c.Plan.Pol.Failures.Limit {
			st.Halted = fmt.Sprintf("%d hosts failed, more than the limit of %d", st.Failures, c.Plan.Pol.Failures.Limit)
			halted = st.Halted
		}
		return true
	}, Event{Time: c.now(), Decision: Decision{Action: Fail, Reason: cause.Error()}})
	if err == nil && halted != "" {
		c.count(Halt)
		c.audit(Event{Time: c.now(), Decision: Decision{Action: Halt, Host: h.Name, Stage: c.Plan.Stage(h.Name), Reason: halted}})
	}
	if err != nil || !c.Plan.Pol.Failures.Rollback {
		return
	}
	reason := "rolled back"
	if c.Plan.Pol.Mode == config.ModeSlot {
		reason = c.rollbackSlot(ctx, h)
		if ctx.Err() != nil {
			return
		}
	} else if run, err := c.Agents.Rollback(ctx, h); err != nil {
		reason = "rollback failed to start: " + err.Error()
	} else {
		for {
			as, err := c.status(ctx, h, c.now().Add(c.Plan.Pol.Health.Deadline))
			if err != nil {
				reason = "rollback: agent unreachable: " + err.Error()
				break
			}
			if as.LastID >= run && !(as.Syncing && as.RunID == run) {
				if !as.LastOK {
					reason = "rollback failed: " + as.LastErr
				} else {
					reason = "rolled back to " + as.Image
				}
				break
			}
			if !c.sleep(ctx, c.poll()) {
				return
			}
		}
	}
	c.audit(Event{Time: c.now(), Decision: Decision{Action: RolledBack, Host: h.Name, Stage: c.Plan.Stage(h.Name), Reason: reason}})
}

// rollbackSlot switches a failed slot host back to the slot it left,
// when it runs the rollout's image from its default slot (its trial
// committed, then the rollout's health gates failed), and waits for that
// boot to settle. A
// host whose sync or trial failed is on its old slot already.
func (c *Controller) rollbackSlot(ctx context.Context, h config.Host) string {
	_, image := c.hostState(h.Name)
	sa, ok := c.Agents.(SlotAgents)
	if !ok {
		return "rollback: these agents cannot switch slots"
	}
	deadline := c.now().Add(c.Plan.Pol.SlotDeadline)
	as, err := c.status(ctx, h, deadline)
	switch {
	case err != nil:
		return "rollback: agent unreachable: " + err.Error()
	case as.Slots == nil:
		return "rollback: " + api.ErrNoSlots.Error()
	case as.Image != image || as.Slots.Default != as.Slots.Booted || as.Slots.Trial != nil:
		// The sync or the trial failed: the default is still the slot
		// the host left, where it is or returns by itself.
		return fmt.Sprintf("nothing to roll back: the host boots slot %s by default, which does not run the rollout's image", as.Slots.Default)
	}
	base := as.Slots.Switches
	if err := sa.RollbackSlot(ctx, h); err != nil {
		return "rollback failed to start: " + err.Error()
	}
	for {
		as, err := c.Agents.Status(ctx, h)
		if err == nil {
			if done, err := as.pusherStatus().SlotSyncOutcome(0, base, ""); done {
				if err != nil {
					return "rollback failed: " + err.Error()
				}
				return fmt.Sprintf("rolled back to slot %s at %s", as.Slots.Booted, as.Image)
			}
		}
		if c.now().After(deadline) {
			return fmt.Sprintf("rollback: the switch did not settle within %v", c.Plan.Pol.SlotDeadline)
		}
		if !c.sleep(ctx, c.poll()) {
			return "rollback: " + ctx.Err().Error()
		}
	}
}
