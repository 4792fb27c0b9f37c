package agent

import (
	"context"
	"errors"
	"net/http"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/pusher"
	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/pusher/fetch"
)

// SlotManager does the agent's slot work (package slots implements it;
// the agent only routes to it).
type SlotManager interface {
	// SyncSlot writes image d into the slot that is not booted, carries
	// the host's configuration over and, with switchAfter, switches to it.
	SyncSlot(ctx context.Context, d images.Digest, src fetch.Source, opts pusher.SyncOptions, switchAfter bool) api.Result
	// Handler serves /v1/slots/ (status, switch, commit, rollback).
	Handler() http.Handler
	// Summary is the slots' part of GET /v1/status (read from the
	// slots' state; never waits for a running slot sync).
	Summary() *api.SlotSummary
}

func (a *Agent) checkSlotRequest(req api.SyncRequest) error {
	if req.Slot == "" && !req.Switch {
		return nil
	}
	if a.Slots == nil {
		return api.ErrNoSlots
	}
	if req.Slot != api.SlotInactive {
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

// slotStatus adds the slots' summary to a status; while a slot sync
// runs, its progress is the status's progress.
func (a *Agent) slotStatus(s *api.Status) {
	if a.Slots == nil {
		return
	}
	s.Slots = a.Slots.Summary()
	if p := s.Slots.Progress; p != nil {
		s.Progress = *p
		s.Progress.Phase = "slot " + s.Slots.Phase
	}
}
