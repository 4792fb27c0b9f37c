package fleetlock

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"

	"github.com/ingotfleet/ingot/rollout"
)

// Paths the Handler serves.
const (
	PathPreReboot   = "/v1/pre-reboot"
	PathSteadyState = "/v1/steady-state"
	PathHolders     = "/v1/holders"
)

// Error is the body of every refusal, as the protocol has it: Kind is one
// of a few fixed words, Value says what went wrong for a person.
type Error struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// Reply is the body of a successful lock or unlock.
type Reply struct {
	ID    string `json:"id"`
	Group string `json:"group"`
	// Held says whether the client holds a slot after the request.
	Held bool `json:"held"`
}

// Handler serves the FleetLock endpoints over a rollout.Slots. It does no
// authentication of its own: mount it where the network or TLS decides
// who may reach it.
type Handler struct {
	slots rollout.Slots
	log   *slog.Logger
}

// New returns a Handler over slots; log (nil: none) gets one line per
// lock and unlock.
func New(slots rollout.Slots, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Handler{slots: slots, log: log}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case PathPreReboot, PathSteadyState:
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s takes POST, not %s", r.URL.Path, r.Method))
			return
		}
		h.lockOrUnlock(w, r)
	case PathHolders:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s takes GET, not %s", r.URL.Path, r.Method))
			return
		}
		h.holders(w, r)
	default:
		writeError(w, http.StatusNotFound, "not_found",
			fmt.Sprintf("no FleetLock endpoint %s (there are POST %s, POST %s and GET %s)", r.URL.Path, PathPreReboot, PathSteadyState, PathHolders))
	}
}

func (h *Handler) lockOrUnlock(w http.ResponseWriter, r *http.Request) {
	lock := r.URL.Path == PathPreReboot
	p, err := DecodeRequest(r.Header, r.Body)
	if err != nil {
		var re *RequestError
		if errors.As(err, &re) {
			writeError(w, re.Status, re.Kind, re.Msg)
		} else {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		}
		h.log.Info("fleetlock: bad request", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		return
	}
	op, verb := h.slots.Release, "unlock"
	if lock {
		op, verb = h.slots.Acquire, "lock"
	}
	if err := op(r.Context(), p.ID); err != nil {
		status, kind := classify(err, lock)
		h.log.Info("fleetlock: "+verb+" refused", "id", p.ID, "group", p.Group, "kind", kind, "err", err)
		writeError(w, status, kind, err.Error())
		return
	}
	h.log.Info("fleetlock: "+verb, "id", p.ID, "group", p.Group)
	writeJSON(w, http.StatusOK, Reply{ID: p.ID, Group: p.Group, Held: lock})
}

// classify maps a Slots error to a status and a FleetLock error kind.
// Slots names no sentinel for an unknown host; such an error lands in
// failed_lock / failed_unlock with its message, which names the host.
func classify(err error, lock bool) (int, string) {
	switch {
	case errors.Is(err, rollout.ErrNoSlot):
		return http.StatusConflict, "failed_lock_semaphore_full"
	case errors.Is(err, rollout.ErrNotLeader):
		return http.StatusServiceUnavailable, "not_leader"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "unavailable"
	case lock:
		return http.StatusInternalServerError, "failed_lock"
	default:
		return http.StatusInternalServerError, "failed_unlock"
	}
}

func (h *Handler) holders(w http.ResponseWriter, r *http.Request) {
	hs, err := h.slots.Holders(r.Context())
	if err != nil {
		status, kind := classify(err, false)
		if kind == "failed_unlock" {
			kind = "failed_list"
		}
		writeError(w, status, kind, err.Error())
		return
	}
	if set := r.URL.Query().Get("set"); set != "" {
		hs = slices.DeleteFunc(hs, func(x rollout.Holder) bool { return x.Set != set })
	}
	if hs == nil {
		hs = []rollout.Holder{}
	}
	slices.SortFunc(hs, func(a, b rollout.Holder) int {
		return cmp.Or(cmp.Compare(a.Set, b.Set), cmp.Compare(a.Host, b.Host), cmp.Compare(a.Reason, b.Reason))
	})
	writeJSON(w, http.StatusOK, hs)
}

func writeError(w http.ResponseWriter, status int, kind, value string) {
	writeJSON(w, status, Error{Kind: kind, Value: value})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(Error{Kind: "internal", Value: err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n')) // the status is sent: a client gone mid-body is not told anything more
}
