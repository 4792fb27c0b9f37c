package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Keys in the Store.
const (
	keyMeta       = "meta"
	keyHostPrefix = "host/"
	keySlotPrefix = "slot/"
)

// LoadState reads a rollout's state from the store; nil when none.
func LoadState(ctx context.Context, s Store) (*State, error) {
	b, err := s.Get(ctx, keyMeta)
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	if b == nil {
		return nil, nil
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	hs, err := s.List(ctx, keyHostPrefix)
	if err != nil {
		return nil, fmt.Errorf("reading state: %w", err)
	}
	st.Hosts = map[string]HostState{}
	for k, v := range hs {
		var h HostState
		if err := json.Unmarshal(v, &h); err != nil {
			return nil, fmt.Errorf("reading state of %s: %w", k, err)
		}
		st.Hosts[strings.TrimPrefix(k, keyHostPrefix)] = h
	}
	return &st, nil
}

// txn gathers the changes of one transition: the meta record and the
// hosts that changed.
type txn struct {
	puts map[string][]byte
}

func newTxn() *txn { return &txn{puts: map[string][]byte{}} }

func (t *txn) meta(st *State) {
	b, _ := json.Marshal(st)
	t.puts[keyMeta] = b
}

func (t *txn) host(name string, h HostState) {
	b, _ := json.Marshal(h)
	t.puts[keyHostPrefix+name] = b
}
