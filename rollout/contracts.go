package rollout

import (
	"context"
	"errors"
	"time"
)

// This file is the contract between the controller (package rollout) and
// the pieces that plug into it: the state stores (a local bbolt file, or
// etcd shared by several controllers: rollout/etcdstore) and the FleetLock
// server (rollout/fleetlock). Both sides are written against it; change it
// only together with every implementation.

// ErrNotLeader is returned (wrapped) by a Store shared by several
// controllers when the caller does not hold, or no longer holds, the
// leadership that fences its writes. A controller that sees it stops acting.
var ErrNotLeader = errors.New("rollout: not the leader")

// ErrNoSlot is returned (wrapped) by Slots.Acquire when the host's set has
// no room left in its disruption budget.
var ErrNoSlot = errors.New("rollout: no slot free in the set's budget")

// Store keeps a controller's state as small records under string keys.
// Every transition is committed before it is acted on.
type Store interface {
	// Get returns the value under key, or nil and no error when absent.
	Get(ctx context.Context, key string) ([]byte, error)
	// List returns every key that starts with prefix and its value.
	List(ctx context.Context, prefix string) (map[string][]byte, error)
	// Commit writes every put atomically and durably before it returns;
	// a nil value deletes the key. A shared store refuses the commit with
	// an error wrapping ErrNotLeader unless the caller is the leader now.
	Commit(ctx context.Context, puts map[string][]byte) error
	Close() error
}

// Elector elects one leader among the controllers that share a Store.
type Elector interface {
	// Campaign blocks until this controller leads or ctx ends.
	Campaign(ctx context.Context) error
	// Lost is closed when leadership is lost: the lease expired, the
	// store was unreachable for longer than the lease, or Resign.
	Lost() <-chan struct{}
	// Resign gives leadership up at once.
	Resign(ctx context.Context) error
}

// Holder is one slot taken from a set's budget, for `ingot rollout status`
// and the FleetLock listing.
type Holder struct {
	Host   string    `json:"host"`
	Set    string    `json:"set"`
	Reason string    `json:"reason"` // "rollout", "fleetlock", "unavailable", "cooldown"
	Since  time.Time `json:"since"`
}

// Slots is the per-set disruption budget as FleetLock clients see it.
// The controller implements it; rollout/fleetlock serves it over HTTP.
type Slots interface {
	// Acquire takes a slot for host (a FleetLock client id: the host's
	// inventory name) in its set. Taking a slot the host already holds
	// succeeds. A full budget gives an error wrapping ErrNoSlot; an
	// unknown host an error naming it.
	Acquire(ctx context.Context, host string) error
	// Release gives the host's slot back; releasing none succeeds.
	Release(ctx context.Context, host string) error
	// Holders lists every slot in use, in every set.
	Holders(ctx context.Context) ([]Holder, error)
}
