package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/ingotfleet/ingot/images"
)

// Sub-file deltas. When image B follows image A, most changed files differ
// from A's version at the same path in a few places; a delta is B's
// version compressed by zstd with A's version as a raw dictionary, stored
// under deltas/<from>/<to> (the two content hashes). It is computed once
// per image pair (ComputeDeltas) and fetched by every host that holds
// the old version; hosts that do not fall back to chunks. A delta is
// verified where it is used: decoded against bytes that hash to "from",
// the result must hash to "to".

// MaxDeltaFile is the largest file (old or new) deltas are made for: the
// encoder and the decoder hold both versions in memory.
const MaxDeltaFile = 512 << 20

// DeltaLevel is the zstd level deltas are made with. klauspost/compress
// finds matches far back in a raw dictionary only at its best level
// (measured: a 14-byte edit in the middle of 3, 8 and 16 MiB of data
// costs 2.2 MB, 7.6 MB and 41 MB at the default level, 359 B, 919 B and
// 2 KB at the best), and a delta is made once per image pair.
const DeltaLevel = zstd.SpeedBestCompression

// deltaKeep is how much smaller than fetching the chunks a host lacks a
// delta must be to be stored (in tenths).
const deltaKeep = 9

// DeltaHandle is the handle of the delta from content from to content to.
func DeltaHandle(from, to images.Digest) Handle {
	return Handle{Kind: KindDelta, Name: from.String() + "/" + to.String()}
}

// EncodeDelta returns the delta from old to new: zstd with old as a raw
// dictionary, the window wide enough to reach back into all of old.
func EncodeDelta(old, new []byte, level zstd.EncoderLevel) ([]byte, error) {
	if len(old) > MaxDeltaFile || len(new) > MaxDeltaFile {
		return nil, fmt.Errorf("delta of %d to %d bytes: larger than %d", len(old), len(new), MaxDeltaFile)
	}
	window := zstd.MaxWindowSize
	for window > zstd.MinWindowSize && window/2 >= len(old)+len(new) {
		window /= 2
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), zstd.WithEncoderDictRaw(0, old), zstd.WithWindowSize(window))
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	return enc.EncodeAll(new, make([]byte, 0, len(new)/4+64)), nil
}

// ApplyDelta rebuilds content to, of size bytes, from old (which must
// hash to from) and the delta bytes; name labels errors. The output is
// bounded by size while it is decoded (a delta that would grow past it
// is refused with ErrTooLarge) and verified against to.
func ApplyDelta(name string, delta, old []byte, from, to images.Digest, size int64) ([]byte, error) {
	if images.Sum(old) != from {
		return nil, fmt.Errorf("delta %s: the old content given does not hash to %s", name, from)
	}
	if size < 0 || size > MaxDeltaFile {
		return nil, fmt.Errorf("delta %s: content of %d bytes, deltas are made for at most %d: %w", name, size, MaxDeltaFile, ErrTooLarge)
	}
	// EncodeDelta's window is less than twice old and new together;
	// twice that is margin. The output stops at size (the capacity).
	window := uint64(zstd.MinWindowSize)
	for window < 4*uint64(int64(len(old))+size) {
		window *= 2
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderDictRaw(0, old),
		zstd.WithDecodeAllCapLimit(true), zstd.WithDecoderMaxMemory(window), zstd.WithDecoderMaxWindow(window))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	out, err := dec.DecodeAll(delta, make([]byte, 0, size))
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || int64(len(out)) > size {
		return nil, fmt.Errorf("delta %s: decodes to more than the %d bytes of its content: %w", name, size, ErrTooLarge)
	}
	if err != nil {
		return nil, fmt.Errorf("delta %s: decoding: %v: %w", name, err, ErrCorrupt)
	}
	if got := images.Sum(out); got != to {
		return nil, fmt.Errorf("delta %s: result hashes to %s: %w", name, got, ErrCorrupt)
	}
	return out, nil
}

// Delta returns content to (of size bytes), rebuilt from old (the content
// hashing to from) and the stored delta; an error wrapping ErrNotFound
// when the store has no such delta, ErrCorrupt when it does not rebuild
// to, ErrTooLarge when the delta is longer than to can need.
func (s *Store) Delta(ctx context.Context, from, to images.Digest, old []byte, size int64) ([]byte, error) {
	h := DeltaHandle(from, to)
	raw, err := s.b.Get(ctx, h, compressedLimit(size))
	if err != nil {
		return nil, err
	}
	return ApplyDelta(h.Path()+" from "+s.b.Location(), raw, old, from, to, size)
}

// HasDelta reports whether the delta from → to is stored.
func (s *Store) HasDelta(ctx context.Context, from, to images.Digest) (bool, error) {
	return s.b.Has(ctx, DeltaHandle(from, to))
}

// PutDelta stores the delta from old to new and returns its size.
func (s *Store) PutDelta(ctx context.Context, old, new []byte) (int64, error) {
	z, err := EncodeDelta(old, new, DeltaLevel)
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
		if eb.Type != images.TypeFile || eb.Size == 0 || eb.Size > MaxDeltaFile {
			continue
		}
		ea := ma.Lookup(eb.Path)
		if ea != nil {
			ea = ma.Resolve(ea)
		}
		if ea == nil || ea.Type != images.TypeFile || ea.SHA256 == eb.SHA256 || ea.Size == 0 || ea.Size > MaxDeltaFile {
			continue
		}
		k := [2]images.Digest{ea.SHA256, eb.SHA256}
		if !seen[k] {
			seen[k] = true
			pairs = append(pairs, pair{ea, eb})
		}
	}
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  = make(chan pair)
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range max(1, min(s.workers, runtime.GOMAXPROCS(0))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				ds, err := s.computeDelta(ctx, p.from, p.to)
				mu.Lock()
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
	return st, ctx.Err()
}

// computeDelta stores one delta if it pays; DeltaBytes is what a host at
// from then fetches for this file (the delta or the missing chunks).
func (s *Store) computeDelta(ctx context.Context, from, to *images.Entry) (DeltaStats, error) {
	var st DeltaStats
	oldChunks, err := s.FileChunksOf(ctx, from.SHA256, from.Size)
	if err != nil {
		return st, err
	}
	newChunks, err := s.FileChunksOf(ctx, to.SHA256, to.Size)
	if err != nil {
		return st, err
	}
	have := map[images.Digest]bool{}
	for _, c := range oldChunks {
		have[c.ID] = true
	}
	for _, c := range newChunks {
		n, err := s.storedSize(ctx, c.ID)
		if err != nil {
			return st, err
		}
		st.WholeBytes += n
		if !have[c.ID] {
			st.ChunkBytes += n
			have[c.ID] = true
		}
	}
	if ok, err := s.HasDelta(ctx, from.SHA256, to.SHA256); err != nil {
		return st, err
	} else if ok {
		raw, err := s.b.Get(ctx, DeltaHandle(from.SHA256, to.SHA256), compressedLimit(to.Size))
		if err != nil {
			return st, err
		}
		st.Deltas, st.DeltaBytes = 1, int64(len(raw))
		return st, nil
	}
	old, err := s.contentBytes(ctx, from.SHA256)
	if err != nil {
		return st, err
	}
	nw, err := s.contentBytes(ctx, to.SHA256)
	if err != nil {
		return st, err
	}
	z, err := EncodeDelta(old, nw, DeltaLevel)
	if err != nil {
		return st, err
	}
	if int64(len(z))*10 >= st.ChunkBytes*deltaKeep {
		st.DeltaBytes = st.ChunkBytes
		return st, nil
	}
	if err := s.b.Put(ctx, DeltaHandle(from.SHA256, to.SHA256), z, true); err != nil {
		return st, err
	}
	st.Deltas, st.DeltaBytes = 1, int64(len(z))
	return st, nil
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
	old, err := s.contentBytes(ctx, from)
	if err != nil {
		return fmt.Errorf("its old content: %w", err)
	}
	_, err = s.Delta(ctx, from, to, old, MaxDeltaFile)
	return err
}
