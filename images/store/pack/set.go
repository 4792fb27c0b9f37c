package pack

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/images/store/chunks"
)

// Set is what a Store knows of the packs of its backend: where each
// packed object is, from the pack indexes read so far, the image pack
// indexes to read at the next object it cannot place, and the frames
// last decompressed. It is safe for concurrent use.
type Set struct {
	b   backend.Backend
	dec *zstd.Decoder // frames: output capped at MaxFrame

	mu        sync.RWMutex
	ids       []images.Digest // pack number → pack id
	num       map[images.Digest]int32
	locs      map[images.Digest]Loc
	loaded    map[images.Digest]bool  // pack indexes read (by pack id)
	imgLoaded map[images.Digest]bool  // image pack indexes read or absent
	pending   map[images.Digest]int64 // images whose pack index may be needed → its read limit
	loadMu    sync.Mutex              // one reader of pending image pack indexes at a time: the others wait for it

	frameMu  sync.Mutex
	frames   map[frameKey][]byte
	order    []frameKey
	inflight map[frameKey]*frameCall // frames being read: a second reader waits for the first
}

// frameCall is a frame being read and decompressed.
type frameCall struct {
	done chan struct{}
	data []byte
	err  error
}

type frameKey struct {
	pack int32
	off  int64
}

// NewSet returns an empty Set over b, decompressing up to workers frames
// at once.
func NewSet(b backend.Backend, workers int) *Set {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(workers), zstd.WithDecodeAllCapLimit(true),
		zstd.WithDecoderMaxWindow(MaxFrame))
	if err != nil {
		panic(err)
	}
	return &Set{
		b:         b,
		dec:       dec,
		num:       map[images.Digest]int32{},
		locs:      map[images.Digest]Loc{},
		loaded:    map[images.Digest]bool{},
		imgLoaded: map[images.Digest]bool{},
		pending:   map[images.Digest]int64{},
		frames:    map[frameKey][]byte{},
		inflight:  map[frameKey]*frameCall{},
	}
}

// Close releases the decompressor.
func (ps *Set) Close() { ps.dec.Close() }

// Add merges a parsed pack index into what the set knows. An object
// already known keeps its place.
func (ps *Set) Add(packs, ids []images.Digest, locs []Loc) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	nums := make([]int32, len(packs))
	for i, p := range packs {
		n, ok := ps.num[p]
		if !ok {
			n = int32(len(ps.ids))
			ps.ids = append(ps.ids, p)
			ps.num[p] = n
		}
		nums[i] = n
	}
	for i, id := range ids {
		if _, ok := ps.locs[id]; ok {
			continue
		}
		l := locs[i]
		l.Pack = nums[l.Pack]
		ps.locs[id] = l
	}
}

// Lookup returns where object id is packed, as far as the set knows.
func (ps *Set) Lookup(id images.Digest) (Loc, bool) {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	l, ok := ps.locs[id]
	return l, ok
}

// Number is the number of pack p in the set (Loc.Pack), once an index
// naming it has been added.
func (ps *Set) Number(p images.Digest) int32 {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	return ps.num[p]
}

// markLoaded records that the index of pack p has been read.
func (ps *Set) markLoaded(p images.Digest) {
	ps.mu.Lock()
	ps.loaded[p] = true
	ps.mu.Unlock()
}

// NoteImage records that objects of image d may be read soon: its image
// pack index (of at most max bytes) is read at the first object the set
// cannot place.
func (ps *Set) NoteImage(d images.Digest, max int64) {
	ps.mu.Lock()
	if !ps.imgLoaded[d] {
		ps.pending[d] = max
	}
	ps.mu.Unlock()
}

// loadPendingImages reads the image pack indexes noted by NoteImage; an
// image without one (a v1 store) is not asked again. It reports whether
// it read any.
func (ps *Set) loadPendingImages(ctx context.Context) (bool, error) {
	ps.mu.Lock()
	pending := ps.pending
	ps.pending = map[images.Digest]int64{}
	for d := range pending {
		ps.imgLoaded[d] = true
	}
	ps.mu.Unlock()
	read := false
	for d, max := range pending {
		h := backend.DigestHandle(backend.KindImagePacks, d)
		var packs, ids []images.Digest
		var locs []Loc
		_, err := backend.GetChecked(ctx, ps.b, h, max, func(data []byte) (err error) {
			packs, ids, locs, err = ParseIndex(h.Path()+" from "+ps.b.Location(), data)
			return err
		})
		if errors.Is(err, backend.ErrNotFound) {
			continue
		}
		if err != nil {
			ps.forgetImage(d, max)
			return read, err
		}
		ps.Add(packs, ids, locs)
		read = true
	}
	return read, nil
}

func (ps *Set) forgetImage(d images.Digest, max int64) {
	ps.mu.Lock()
	delete(ps.imgLoaded, d)
	ps.pending[d] = max
	ps.mu.Unlock()
}

// LoadIndexes reads every pack index not read yet, on a backend that
// can list (a local store); others have nothing to list and it returns
// false. A pack index whose pack is missing or shorter than its frames
// (a crash before the sync) is skipped: its objects count as absent, so
// an import stores them again.
func (ps *Set) LoadIndexes(ctx context.Context) (bool, error) {
	var names []images.Digest
	err := ps.b.List(ctx, backend.KindPackIndex, func(n string) error {
		d, err := images.ParseDigest(n)
		if err != nil {
			return nil
		}
		ps.mu.RLock()
		done := ps.loaded[d]
		ps.mu.RUnlock()
		if !done {
			names = append(names, d)
		}
		return nil
	})
	if errors.Is(err, backend.ErrNotSupported) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, p := range names {
		h := backend.DigestHandle(backend.KindPackIndex, p)
		data, err := ps.b.Get(ctx, h, MaxIndex)
		if errors.Is(err, backend.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		what := h.Path() + " from " + ps.b.Location()
		packs, ids, locs, err := ParseIndex(what, data)
		if err != nil {
			return false, err
		}
		if len(packs) != 1 || packs[0] != p {
			return false, fmt.Errorf("pack index %s: names other packs than its own: %w", what, backend.ErrCorrupt)
		}
		var end int64
		for _, l := range locs {
			end = max(end, l.FrameOff+int64(l.FrameLen))
		}
		if _, err := ps.b.GetRange(ctx, backend.DigestHandle(backend.KindPack, p), end-1, 1); err != nil {
			if errors.Is(err, backend.ErrNotFound) || errors.Is(err, backend.ErrCorrupt) {
				continue // the pack is gone or short: its objects are not here
			}
			return false, err
		}
		ps.Add(packs, ids, locs)
		ps.markLoaded(p)
	}
	return len(names) > 0, nil
}

// Place finds where object id is packed, reading the image pack indexes
// noted and, at the first miss, the backend's pack indexes.
func (ps *Set) Place(ctx context.Context, id images.Digest) (Loc, bool, error) {
	if l, ok := ps.Lookup(id); ok {
		return l, true, nil
	}
	ps.loadMu.Lock()
	defer ps.loadMu.Unlock()
	if l, ok := ps.Lookup(id); ok {
		return l, true, nil // another reader loaded it meanwhile
	}
	if read, err := ps.loadPendingImages(ctx); err != nil {
		return Loc{}, false, err
	} else if read {
		if l, ok := ps.Lookup(id); ok {
			return l, true, nil
		}
	}
	return Loc{}, false, nil
}

// Read returns object id from its place l, verified, of at most max
// bytes. The frame is read checking id's bytes in it, so a Failover
// backend takes a damaged frame from its next location; a frame cached
// (or read) for another object of it is read again, once, when id's bytes
// in it are wrong.
func (ps *Set) Read(ctx context.Context, id images.Digest, l Loc, max int64) ([]byte, error) {
	ps.mu.RLock()
	pack := ps.ids[l.Pack]
	ps.mu.RUnlock()
	h := backend.DigestHandle(backend.KindPack, pack)
	if int64(l.ObjLen) > max {
		return nil, backend.TooLarge(backend.DigestHandle(backend.KindObject, id), ps.b.Location(), fmt.Sprintf("its pack index says %d bytes,", l.ObjLen), max)
	}
	frame, checked, err := ps.frame(ctx, h, id, l)
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", id, err)
	}
	if checked { // verified as it was read
		end := int64(l.ObjOff) + int64(l.ObjLen)
		return frame[l.ObjOff:end:end], nil
	}
	data, err := ps.object(h, id, l, frame)
	if errors.Is(err, backend.ErrCorrupt) {
		ps.dropFrame(frameKey{l.Pack, l.FrameOff})
		if frame, _, err = ps.frame(ctx, h, id, l); err != nil {
			return nil, fmt.Errorf("object %s: %w", id, err)
		}
		data, err = ps.object(h, id, l, frame)
	}
	return data, err
}

// object is object id at l in frame, verified.
func (ps *Set) object(h backend.Handle, id images.Digest, l Loc, frame []byte) ([]byte, error) {
	end := int64(l.ObjOff) + int64(l.ObjLen)
	if end > int64(len(frame)) {
		return nil, fmt.Errorf("object %s in %s from %s: ends at %d of a frame of %d bytes: %w", id, h, ps.b.Location(), end, len(frame), backend.ErrCorrupt)
	}
	data := frame[l.ObjOff:end:end]
	if got := images.Sum(data); got != id {
		return nil, fmt.Errorf("object %s in %s from %s: bytes hash to %s: %w", id, h, ps.b.Location(), got, backend.ErrCorrupt)
	}
	return data, nil
}

// dropFrame forgets the cached frame k.
func (ps *Set) dropFrame(k frameKey) {
	ps.frameMu.Lock()
	defer ps.frameMu.Unlock()
	if _, ok := ps.frames[k]; !ok {
		return
	}
	delete(ps.frames, k)
	for i, o := range ps.order {
		if o == k {
			ps.order = append(ps.order[:i:i], ps.order[i+1:]...)
			break
		}
	}
}

// frame returns the decompressed frame at l of pack h (shared: callers
// must not change it); checked when this call read it, checking id's
// bytes in it.
func (ps *Set) frame(ctx context.Context, h backend.Handle, id images.Digest, l Loc) (data []byte, checked bool, err error) {
	k := frameKey{l.Pack, l.FrameOff}
	ps.frameMu.Lock()
	if f, ok := ps.frames[k]; ok {
		ps.frameMu.Unlock()
		return f, false, nil
	}
	if c, ok := ps.inflight[k]; ok {
		ps.frameMu.Unlock()
		select {
		case <-c.done:
			if c.err != nil && ctx.Err() == nil && (errors.Is(c.err, context.Canceled) || errors.Is(c.err, context.DeadlineExceeded)) {
				return ps.frame(ctx, h, id, l) // the first reader gave up, not this one
			}
			return c.data, false, c.err
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	c := &frameCall{done: make(chan struct{})}
	ps.inflight[k] = c
	ps.frameMu.Unlock()
	c.data, c.err = ps.readFrame(ctx, h, l, func(f []byte) error {
		_, err := ps.object(h, id, l, f)
		return err
	})
	ps.frameMu.Lock()
	delete(ps.inflight, k)
	if c.err == nil {
		if len(ps.order) >= frameCacheSize {
			delete(ps.frames, ps.order[0])
			ps.order = ps.order[1:]
		}
		ps.frames[k] = c.data
		ps.order = append(ps.order, k)
	}
	ps.frameMu.Unlock()
	close(c.done)
	return c.data, true, c.err
}

// readFrame fetches the frame at l of pack h and decompresses it; the
// frame must pass verify too.
func (ps *Set) readFrame(ctx context.Context, h backend.Handle, l Loc, verify func(frame []byte) error) ([]byte, error) {
	var f []byte
	_, err := backend.GetRangeChecked(ctx, ps.b, h, l.FrameOff, int64(l.FrameLen), func(raw []byte) (err error) {
		if f, err = ps.decodeFrame(h, l, raw); err == nil {
			err = verify(f)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// decodeFrame decompresses raw, the frame at l of pack h.
func (ps *Set) decodeFrame(h backend.Handle, l Loc, raw []byte) ([]byte, error) {
	where := fmt.Sprintf("%s (frame at %d) from %s", h, l.FrameOff, ps.b.Location())
	// The output is allocated once, at the size the frame declares (the
	// encoder leaves it out only for tiny frames), never past MaxFrame.
	var fh zstd.Header
	if err := fh.Decode(raw); err != nil {
		return nil, fmt.Errorf("%s: not a zstd frame: %v: %w", where, err, backend.ErrCorrupt)
	}
	size := uint64(NoSizeMax)
	if fh.HasFCS {
		if fh.FrameContentSize > MaxFrame {
			return nil, fmt.Errorf("%s: claims %d bytes, more than the %d bytes a frame of a pack may hold: %w", where, fh.FrameContentSize, MaxFrame, backend.ErrTooLarge)
		}
		size = fh.FrameContentSize
	}
	f, err := ps.dec.DecodeAll(raw, make([]byte, 0, size))
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return nil, fmt.Errorf("%s: decompresses to more than the %d bytes a frame of a pack may hold: %w", where, size, backend.ErrTooLarge)
	}
	if err != nil || (fh.HasFCS && uint64(len(f)) != size) {
		return nil, fmt.Errorf("%s: decompressing: %v (%d bytes): %w", where, err, len(f), backend.ErrCorrupt)
	}
	return f, nil
}

// Has reports whether object id is in the store, packed or loose.
func (ps *Set) Has(ctx context.Context, id images.Digest) (bool, error) {
	if _, ok, err := ps.Place(ctx, id); ok || err != nil {
		return ok, err
	}
	ok, err := ps.b.Has(ctx, backend.DigestHandle(backend.KindObject, id))
	if ok || err != nil {
		return ok, err
	}
	if read, err := ps.LoadIndexes(ctx); err != nil || !read {
		return false, err
	}
	_, ok = ps.Lookup(id)
	return ok, nil
}

// ImageEntries returns where every object of the image with manifest m
// (and multi-chunk lists ix) is, for its image pack index; objects not
// in a pack (loose, in a store being migrated) are left out: readers find
// them loose.
func (ps *Set) ImageEntries(m *images.Manifest, ix chunks.Index) []Entry {
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	var out []Entry
	seen := map[images.Digest]bool{}
	add := func(id images.Digest) {
		if seen[id] {
			return
		}
		seen[id] = true
		if l, ok := ps.locs[id]; ok {
			out = append(out, Entry{ID: id, Pack: ps.ids[l.Pack], Loc: l})
		}
	}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Type != images.TypeFile || e.Size == 0 {
			continue
		}
		if cs, ok := ix[e.SHA256]; ok {
			for _, c := range cs {
				add(c.ID)
			}
			continue
		}
		add(e.SHA256)
	}
	return out
}

// StoredSize is what object id costs a reader, compressed: its file, or
// its frame (a reader of a packed object fetches the whole frame).
func (ps *Set) StoredSize(ctx context.Context, id images.Digest) (int64, error) {
	l, ok, err := ps.Place(ctx, id)
	if err != nil {
		return 0, err
	}
	if !ok {
		raw, err := ps.b.Get(ctx, backend.DigestHandle(backend.KindObject, id), CompressedLimit(chunks.MaxChunk))
		if err == nil || !errors.Is(err, backend.ErrNotFound) {
			return int64(len(raw)), err
		}
		if read, lerr := ps.LoadIndexes(ctx); lerr != nil || !read {
			return 0, cmpErr(lerr, err)
		}
		if l, ok = ps.Lookup(id); !ok {
			return 0, err
		}
	}
	return int64(l.FrameLen), nil
}

// cmpErr is a when it is not nil, else b.
func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
