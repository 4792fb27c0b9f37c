package pusher

import (
	"context"
	"errors"
	"net/http"

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
