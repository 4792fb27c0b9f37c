package fetch

import (
	"context"
	"errors"
	"fmt"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/delta"
)

// DeltaPacks are the packed deltas of a sync's image pair (store delta
// packs): their bodies, and every delta of the pair, packed or stored
// alone, so that no delta that does not exist is asked for.
type DeltaPacks struct {
	bodies map[delta.Key][]byte
	exists map[delta.Key]bool
}

// Body is the packed body of delta k, if a pack holds it.
func (p *DeltaPacks) Body(k delta.Key) ([]byte, bool) {
	if p == nil {
		return nil, false
	}
	b, ok := p.bodies[k]
	return b, ok
}

// Has reports whether the store has delta k (packed or alone).
func (p *DeltaPacks) Has(k delta.Key) bool { return p.exists[k] }

// DeltaPacks reads the delta packs from image a to b; nil when the store
// has none or one of them cannot be read (then every delta is asked for
// alone, as without packs). What it holds is bounded by
// delta.MaxPacks packs of bounded size.
func (s *StoreSource) DeltaPacks(ctx context.Context, a, b images.Digest) *DeltaPacks {
	p := &DeltaPacks{bodies: map[delta.Key][]byte{}, exists: map[delta.Key]bool{}}
	for k := 0; k < delta.MaxPacks; k++ {
		dp, err := s.st.DeltaPack(ctx, a, b, k)
		if err = s.read(fmt.Sprintf("delta pack %d", k), err); err != nil {
			if !errors.Is(err, ErrNotFound) && s.log != nil {
				s.log.Warn("delta packs not used", "err", err)
			}
			return nil
		}
		for key, body := range dp.Bodies {
			p.bodies[key] = body
			p.exists[key] = true
		}
		for _, key := range dp.Alone {
			p.exists[key] = true
		}
		if !dp.More {
			return p
		}
	}
	return nil
}
