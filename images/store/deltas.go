package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"sync"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/images/store/delta"
)

// deltaKeep is how much smaller than fetching the chunks a host lacks a
// delta must be to be stored (in tenths).
const deltaKeep = 9

// DeltaHandle is the handle of the delta from content from to content to.
func DeltaHandle(from, to images.Digest) Handle {
	return Handle{Kind: KindDelta, Name: from.String() + "/" + to.String()}
}

// Delta returns content to (of size bytes), rebuilt from old (the content
// hashing to from) and the stored delta; an error wrapping ErrNotFound
// when the store has no such delta, ErrCorrupt when it does not rebuild
// to, ErrTooLarge when the delta is longer than to can need.
func (s *Store) Delta(ctx context.Context, from, to images.Digest, old []byte, size int64) ([]byte, error) {
	return s.DeltaBase(ctx, from, to, delta.NewBase(old), size)
}

// DeltaBase is Delta with the old content hashed already (delta.NewBase).
func (s *Store) DeltaBase(ctx context.Context, from, to images.Digest, old *delta.Base, size int64) ([]byte, error) {
	h := DeltaHandle(from, to)
	var out []byte
	_, err := backend.GetChecked(ctx, s.b, h, compressedLimit(size), func(raw []byte) (err error) {
		out, err = delta.ApplyBase(h.Path()+" from "+s.b.Location(), raw, old, from, to, size)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// HasDelta reports whether the delta from → to is stored.
func (s *Store) HasDelta(ctx context.Context, from, to images.Digest) (bool, error) {
	return s.b.Has(ctx, DeltaHandle(from, to))
}

// PutDelta stores the delta from old to new and returns its size.
func (s *Store) PutDelta(ctx context.Context, old, new []byte) (int64, error) {
	z, err := delta.Best(old, new)
	if err != nil {
		return 0, err
	}
	return int64(len(z)), s.b.Put(ctx, DeltaHandle(images.Sum(old), images.Sum(new)), z, true)
}

// DeltaStats is what ComputeDeltas did.
type DeltaStats struct {
	Files      int   `json:"files"`       // file pairs considered (changed content at one path)
	Deltas     int   `json:"deltas"`      // deltas stored (or found stored)
	DeltaBytes int64 `json:"delta_bytes"` // their total size
	// ChunkBytes is what the same files cost a host at A in chunks it
	// lacks (compressed): what the deltas are measured against.
	ChunkBytes int64 `json:"chunk_bytes"`
	// WholeBytes is what the same files cost as every chunk (compressed).
	WholeBytes int64 `json:"whole_bytes"`
}

// ComputeDeltas stores, for every path that is a non-empty regular file
// in both image a and image b with different content, the delta from a's
// version to b's, when it is smaller than the chunks of b's version that
// a's version does not hold. It is done once per image pair; agents at a
// then fetch deltas. Deltas already stored are kept and counted.
func (s *Store) ComputeDeltas(ctx context.Context, a, b images.Digest) (DeltaStats, error) {
	var st DeltaStats
	ma, err := s.Manifest(ctx, a)
	if err != nil {
		return st, err
	}
	mb, err := s.Manifest(ctx, b)
	if err != nil {
		return st, err
	}
	type pair struct{ from, to *images.Entry }
	var pairs []pair
	seen := map[[2]images.Digest]bool{}
	for i := range mb.Entries {
		eb := &mb.Entries[i]
		if eb.Type != images.TypeFile || eb.Size == 0 || eb.Size > delta.MaxFile {
			continue
		}
		ea := ma.Lookup(eb.Path)
		if ea != nil {
			ea = ma.Resolve(ea)
		}
		if ea == nil || ea.Type != images.TypeFile || ea.SHA256 == eb.SHA256 || ea.Size == 0 || ea.Size > delta.MaxFile {
			continue
		}
		k := [2]images.Digest{ea.SHA256, eb.SHA256}
		if !seen[k] {
			seen[k] = true
			pairs = append(pairs, pair{ea, eb})
		}
	}
	var (
		mu     sync.Mutex
		first  error
		wg     sync.WaitGroup
		next   = make(chan pair)
		bodies = map[delta.Key][]byte{}
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range max(1, min(s.workers, runtime.GOMAXPROCS(0))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				ds, body, err := s.computeDelta(ctx, p.from, p.to)
				mu.Lock()
				if body != nil {
					bodies[delta.Key{From: p.from.SHA256, To: p.to.SHA256}] = body
				}
				if err != nil && first == nil {
					first = fmt.Errorf("delta for %s: %w", images.Escape(p.to.Path), err)
					cancel()
				}
				st.Files++
				st.Deltas += ds.Deltas
				st.DeltaBytes += ds.DeltaBytes
				st.ChunkBytes += ds.ChunkBytes
				st.WholeBytes += ds.WholeBytes
				mu.Unlock()
			}
		}()
	}
	for _, p := range pairs {
		if ctx.Err() != nil {
			break
		}
		next <- p
	}
	close(next)
	wg.Wait()
	if first != nil {
		return st, first
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if err := s.putManifestDelta(ctx, a, b); err != nil {
		return st, err
	}
	return st, s.putDeltaPacks(ctx, a, b, bodies)
}

// ManifestDeltaLimit is the largest manifest a host rebuilds from a
// delta against a manifest of old bytes: a larger one (an image that grew
// more than that) is fetched whole.
func ManifestDeltaLimit(old int) int64 { return min(MaxManifest, 2*int64(old)+1<<20) }

// putManifestDelta stores the delta from image a's manifest to b's (a
// content delta: a manifest's digest is the hash of its bytes), so that a
// host that keeps a's manifest fetches a few lines' worth instead of the
// whole of b's: for the Debian update, most of its 11,700 lines are the
// same in both.
func (s *Store) putManifestDelta(ctx context.Context, a, b images.Digest) error {
	old, err := s.ManifestBytes(ctx, a)
	if err != nil {
		return err
	}
	nw, err := s.ManifestBytes(ctx, b)
	if err != nil {
		return err
	}
	if int64(len(nw)) > ManifestDeltaLimit(len(old)) {
		return nil
	}
	z, err := delta.Encode(old, nw, delta.Level)
	if err != nil {
		return err
	}
	return s.b.Put(ctx, DeltaHandle(a, b), z, true)
}

// putDeltaPacks stores the packs of the pair's deltas.
func (s *Store) putDeltaPacks(ctx context.Context, a, b images.Digest, deltas map[delta.Key][]byte) error {
	for k, p := range delta.EncodePacks(deltas) {
		if err := s.b.Put(ctx, deltaPackHandle(a, b, k), p, true); err != nil {
			return fmt.Errorf("delta pack %d of %s → %s: %w", k, a, b, err)
		}
	}
	return nil
}

// computeDelta stores one delta if it pays; DeltaBytes is what a host at
// from then fetches for this file (the delta or the missing chunks).
func (s *Store) computeDelta(ctx context.Context, from, to *images.Entry) (DeltaStats, []byte, error) {
	var st DeltaStats
	oldChunks, err := s.FileChunksOf(ctx, from.SHA256, from.Size)
	if err != nil {
		return st, nil, err
	}
	newChunks, err := s.FileChunksOf(ctx, to.SHA256, to.Size)
	if err != nil {
		return st, nil, err
	}
	have := map[images.Digest]bool{}
	for _, c := range oldChunks {
		have[c.ID] = true
	}
	for _, c := range newChunks {
		n, err := s.packs.StoredSize(ctx, c.ID)
		if err != nil {
			return st, nil, err
		}
		st.WholeBytes += n
		if !have[c.ID] {
			st.ChunkBytes += n
			have[c.ID] = true
		}
	}
	if ok, err := s.HasDelta(ctx, from.SHA256, to.SHA256); err != nil {
		return st, nil, err
	} else if ok {
		raw, err := s.b.Get(ctx, DeltaHandle(from.SHA256, to.SHA256), compressedLimit(to.Size))
		if err != nil {
			return st, nil, err
		}
		st.Deltas, st.DeltaBytes = 1, int64(len(raw))
		return st, raw, nil
	}
	old, err := s.contentBytes(ctx, from.SHA256)
	if err != nil {
		return st, nil, err
	}
	nw, err := s.contentBytes(ctx, to.SHA256)
	if err != nil {
		return st, nil, err
	}
	z, err := delta.Best(old, nw)
	if err != nil {
		return st, nil, err
	}
	if int64(len(z))*10 >= st.ChunkBytes*deltaKeep {
		st.DeltaBytes = st.ChunkBytes
		return st, nil, nil
	}
	if err := s.b.Put(ctx, DeltaHandle(from.SHA256, to.SHA256), z, true); err != nil {
		return st, nil, err
	}
	st.Deltas, st.DeltaBytes = 1, int64(len(z))
	return st, z, nil
}

// contentBytes returns the whole verified content of sha.
func (s *Store) contentBytes(ctx context.Context, sha images.Digest) ([]byte, error) {
	r, err := s.OpenFile(ctx, sha)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// verifyDelta checks a stored delta: its old content must be in the store
// and the delta must rebuild its new content.
func (s *Store) verifyDelta(ctx context.Context, name string) error {
	from, err := images.ParseDigest(name[:64])
	if err != nil {
		return err
	}
	to, err := images.ParseDigest(name[65:])
	if err != nil {
		return err
	}
	if ok, err := s.b.Has(ctx, DigestHandle(KindImage, from)); err != nil {
		return err
	} else if ok {
		return s.verifyDeltaPack(ctx, name)
	}
	old, err := s.contentBytes(ctx, from)
	if err != nil {
		return fmt.Errorf("its old content: %w", err)
	}
	_, err = s.Delta(ctx, from, to, old, delta.MaxFile)
	return err
}

// deltaPackHandle names pack k of the deltas from image a to image b: a
// delta's handle whose second part no content hash can take by chance.
func deltaPackHandle(a, b images.Digest, k int) Handle {
	return Handle{Kind: KindDelta, Name: a.String() + "/" + images.Sum([]byte(fmt.Sprintf("ingot delta pack\x00%s\x00%d", b, k))).String()}
}

// DeltaPack returns pack k of the deltas from image a to image b (an
// error wrapping ErrNotFound when there is none).
func (s *Store) DeltaPack(ctx context.Context, a, b images.Digest, k int) (*delta.Pack, error) {
	if k < 0 || k >= delta.MaxPacks {
		return nil, fmt.Errorf("delta pack %d: %w", k, ErrNotFound)
	}
	h := deltaPackHandle(a, b, k)
	var p *delta.Pack
	_, err := backend.GetChecked(ctx, s.b, h, int64(delta.PackLimit), func(raw []byte) (err error) {
		if p, err = delta.ParsePack(raw); err != nil {
			return fmt.Errorf("%s from %s: %w", h.Path(), s.b.Location(), err)
		}
		if k == delta.MaxPacks-1 && p.More {
			return fmt.Errorf("%s from %s: more than %d packs: %w", h.Path(), s.b.Location(), delta.MaxPacks, ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// verifyDeltaPack checks a delta pack (named by an image and a hash):
// every delta it holds must rebuild its new content from its old.
func (s *Store) verifyDeltaPack(ctx context.Context, name string) error {
	raw, err := s.b.Get(ctx, Handle{Kind: KindDelta, Name: name}, int64(delta.PackLimit))
	if err != nil {
		return err
	}
	p, err := delta.ParsePack(raw)
	if err != nil {
		return err
	}
	for _, k := range slices.SortedFunc(maps.Keys(p.Bodies), func(x, y delta.Key) int { return bytes.Compare(x.To[:], y.To[:]) }) {
		old, err := s.contentBytes(ctx, k.From)
		if err != nil {
			return fmt.Errorf("the old content of a packed delta: %w", err)
		}
		if _, err := delta.Apply(name+": "+k.To.String(), p.Bodies[k], old, k.From, k.To, delta.MaxFile); err != nil {
			return err
		}
	}
	return nil
}
