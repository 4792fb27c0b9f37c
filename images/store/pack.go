package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/backend"
)

// Layout v2 keeps chunks in packs (docs/store.md): a pack is zstd frames
// one after another, a frame holds one object or several small ones, and
// pack indexes say where each object is. A reader fetches the frame of an
// object with a range request, decompresses it (bounded by maxFrame) and
// checks the object against its name, as it does a loose object.
const (
	// packTarget is the size at which a pack is closed.
	packTarget = 4 << 20
	// frameTarget is the size at which a frame is closed. Objects share
	// frames in the order they are stored, so the compressor sees 2 MiB
	// of context. Measured on the Debian minbase root against the
	// .tar.zst of the tree (tar --zstd): frames of 128 KiB made the store
	// 1.19× its size, 512 KiB 1.12×, 1 MiB 1.07×, 2 MiB 1.035×, 4 MiB
	// 1.004×; 1 MiB at SpeedBetterCompression 1.047× for twice the CPU;
	// a frame of its own for every chunk of 32 KiB or more undid most of
	// it (1.20×). The price is paid by a reader of one object: it fetches
	// and decompresses its frame (at most maxFrame).
	frameTarget = 2 << 20
	// frameCacheSize is how many decompressed frames a Store keeps: an
	// export reads the small files of a frame one after another.
	frameCacheSize = 8
	// maxFrameObjs bounds the objects of one frame.
	maxFrameObjs = 1024
)

// packState is what a Store knows of the packs of its backend.
type packState struct {
	mu        sync.RWMutex
	ids       []images.Digest // pack number → pack id
	num       map[images.Digest]int32
	locs      map[images.Digest]packLoc
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

func (ps *packState) init() {
	ps.num = map[images.Digest]int32{}
	ps.locs = map[images.Digest]packLoc{}
	ps.loaded = map[images.Digest]bool{}
	ps.imgLoaded = map[images.Digest]bool{}
	ps.pending = map[images.Digest]int64{}
	ps.frames = map[frameKey][]byte{}
	ps.inflight = map[frameKey]*frameCall{}
}

// layout is the backend's layout version: what new objects are written
// as. A backend that does not say (HTTP, read-only) is read either way.
func (s *Store) layout() int {
	return backend.LayoutOf(s.b)
}

// addIndex merges a parsed pack index into what the store knows. An
// object already known keeps its place.
func (s *Store) addIndex(packs, ids []images.Digest, locs []packLoc) {
	ps := &s.packs
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
		l.pack = nums[l.pack]
		ps.locs[id] = l
	}
}

func (s *Store) lookup(id images.Digest) (packLoc, bool) {
	s.packs.mu.RLock()
	defer s.packs.mu.RUnlock()
	l, ok := s.packs.locs[id]
	return l, ok
}

// WillRead tells the store that objects of image d, whose manifest m the
// reader has from elsewhere (kept from an earlier sync, or rebuilt from a
// manifest delta), are about to be read: in layout v2 its image pack
// index is then read (bounded by m) before the first of them.
func (s *Store) WillRead(d images.Digest, m *images.Manifest) {
	s.noteImage(d, min(maxPackIndex, PackIndexLimit(m)))
}

// noteImage records that objects of image d may be read soon: its image
// pack index is read at the first object the store cannot place.
func (s *Store) noteImage(d images.Digest, max int64) {
	ps := &s.packs
	ps.mu.Lock()
	if !ps.imgLoaded[d] {
		ps.pending[d] = max
	}
	ps.mu.Unlock()
}

// loadPendingImages reads the image pack indexes noted by noteImage; an
// image without one (a v1 store) is not asked again. It reports whether
// it read any.
func (s *Store) loadPendingImages(ctx context.Context) (bool, error) {
	ps := &s.packs
	ps.mu.Lock()
	pending := ps.pending
	ps.pending = map[images.Digest]int64{}
	for d := range pending {
		ps.imgLoaded[d] = true
	}
	ps.mu.Unlock()
	read := false
	for d, max := range pending {
		h := DigestHandle(KindImagePacks, d)
		var packs, ids []images.Digest
		var locs []packLoc
		_, err := backend.GetChecked(ctx, s.b, h, max, func(data []byte) (err error) {
			packs, ids, locs, err = ParsePackIndex(h.Path()+" from "+s.b.Location(), data)
			return err
		})
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			s.forgetImage(d, max)
			return read, err
		}
		s.addIndex(packs, ids, locs)
		read = true
	}
	return read, nil
}

func (s *Store) forgetImage(d images.Digest, max int64) {
	s.packs.mu.Lock()
	delete(s.packs.imgLoaded, d)
	s.packs.pending[d] = max
	s.packs.mu.Unlock()
}

// loadPackIndexes reads every pack index not read yet, on a backend that
// can list (a local store); others have nothing to list and it returns
// false. A pack index whose pack is missing or shorter than its frames
// (a crash before the sync) is skipped: its objects count as absent, so
// an import stores them again.
func (s *Store) loadPackIndexes(ctx context.Context) (bool, error) {
	var names []images.Digest
	err := s.b.List(ctx, KindPackIndex, func(n string) error {
		d, err := images.ParseDigest(n)
		if err != nil {
			return nil
		}
		s.packs.mu.RLock()
		done := s.packs.loaded[d]
		s.packs.mu.RUnlock()
		if !done {
			names = append(names, d)
		}
		return nil
	})
	if errors.Is(err, ErrNotSupported) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, p := range names {
		h := DigestHandle(KindPackIndex, p)
		data, err := s.b.Get(ctx, h, maxPackIndex)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		what := h.Path() + " from " + s.b.Location()
		packs, ids, locs, err := ParsePackIndex(what, data)
		if err != nil {
			return false, err
		}
		if len(packs) != 1 || packs[0] != p {
			return false, fmt.Errorf("pack index %s: names other packs than its own: %w", what, ErrCorrupt)
		}
		var end int64
		for _, l := range locs {
			end = max(end, l.frameOff+int64(l.frameLen))
		}
		if _, err := s.b.GetRange(ctx, DigestHandle(KindPack, p), end-1, 1); err != nil {
			if errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) {
				continue // the pack is gone or short: its objects are not here
			}
			return false, err
		}
		s.addIndex(packs, ids, locs)
		s.packs.mu.Lock()
		s.packs.loaded[p] = true
		s.packs.mu.Unlock()
	}
	return len(names) > 0, nil
}

// place finds where object id is packed, reading the image pack indexes
// noted and, at the first miss, the backend's pack indexes.
func (s *Store) place(ctx context.Context, id images.Digest) (packLoc, bool, error) {
	if l, ok := s.lookup(id); ok {
		return l, true, nil
	}
	s.packs.loadMu.Lock()
	defer s.packs.loadMu.Unlock()
	if l, ok := s.lookup(id); ok {
		return l, true, nil // another reader loaded it meanwhile
	}
	if read, err := s.loadPendingImages(ctx); err != nil {
		return packLoc{}, false, err
	} else if read {
		if l, ok := s.lookup(id); ok {
			return l, true, nil
		}
	}
	return packLoc{}, false, nil
}

// readPacked returns object id from its place l, verified, of at most max
// bytes. The frame is read checking id's bytes in it, so a Failover
// backend takes a damaged frame from its next location; a frame cached
// (or read) for another object of it is read again, once, when id's bytes
// in it are wrong.
func (s *Store) readPacked(ctx context.Context, id images.Digest, l packLoc, max int64) ([]byte, error) {
	s.packs.mu.RLock()
	pack := s.packs.ids[l.pack]
	s.packs.mu.RUnlock()
	h := DigestHandle(KindPack, pack)
	if int64(l.objLen) > max {
		return nil, tooLarge(DigestHandle(KindObject, id), s.b.Location(), fmt.Sprintf("its pack index says %d bytes,", l.objLen), max)
	}
	frame, checked, err := s.frame(ctx, h, id, l)
	if err != nil {
		return nil, fmt.Errorf("object %s: %w", id, err)
	}
	if checked { // verified as it was read
		end := int64(l.objOff) + int64(l.objLen)
		return frame[l.objOff:end:end], nil
	}
	data, err := s.packedObject(h, id, l, frame)
	if errors.Is(err, ErrCorrupt) {
		s.dropFrame(frameKey{l.pack, l.frameOff})
		if frame, _, err = s.frame(ctx, h, id, l); err != nil {
			return nil, fmt.Errorf("object %s: %w", id, err)
		}
		data, err = s.packedObject(h, id, l, frame)
	}
	return data, err
}

// packedObject is object id at l in frame, verified.
func (s *Store) packedObject(h Handle, id images.Digest, l packLoc, frame []byte) ([]byte, error) {
	end := int64(l.objOff) + int64(l.objLen)
	if end > int64(len(frame)) {
		return nil, fmt.Errorf("object %s in %s from %s: ends at %d of a frame of %d bytes: %w", id, h, s.b.Location(), end, len(frame), ErrCorrupt)
	}
	data := frame[l.objOff:end:end]
	if got := images.Sum(data); got != id {
		return nil, fmt.Errorf("object %s in %s from %s: bytes hash to %s: %w", id, h, s.b.Location(), got, ErrCorrupt)
	}
	return data, nil
}

// dropFrame forgets the cached frame k.
func (s *Store) dropFrame(k frameKey) {
	ps := &s.packs
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
func (s *Store) frame(ctx context.Context, h Handle, id images.Digest, l packLoc) (data []byte, checked bool, err error) {
	ps := &s.packs
	k := frameKey{l.pack, l.frameOff}
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
				return s.frame(ctx, h, id, l) // the first reader gave up, not this one
			}
			return c.data, false, c.err
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	c := &frameCall{done: make(chan struct{})}
	ps.inflight[k] = c
	ps.frameMu.Unlock()
	c.data, c.err = s.readFrame(ctx, h, l, func(f []byte) error {
		_, err := s.packedObject(h, id, l, f)
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
func (s *Store) readFrame(ctx context.Context, h Handle, l packLoc, verify func(frame []byte) error) ([]byte, error) {
	var f []byte
	_, err := backend.GetRangeChecked(ctx, s.b, h, l.frameOff, int64(l.frameLen), func(raw []byte) (err error) {
		if f, err = s.decodeFrame(h, l, raw); err == nil {
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
func (s *Store) decodeFrame(h Handle, l packLoc, raw []byte) ([]byte, error) {
	where := fmt.Sprintf("%s (frame at %d) from %s", h, l.frameOff, s.b.Location())
	// The output is allocated once, at the size the frame declares (the
	// encoder leaves it out only for tiny frames), never past maxFrame.
	var fh zstd.Header
	if err := fh.Decode(raw); err != nil {
		return nil, fmt.Errorf("%s: not a zstd frame: %v: %w", where, err, ErrCorrupt)
	}
	size := uint64(noSizeMax)
	if fh.HasFCS {
		if fh.FrameContentSize > maxFrame {
			return nil, fmt.Errorf("%s: claims %d bytes, more than the %d bytes a frame of a pack may hold: %w", where, fh.FrameContentSize, maxFrame, ErrTooLarge)
		}
		size = fh.FrameContentSize
	}
	f, err := s.decFrame.DecodeAll(raw, make([]byte, 0, size))
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return nil, fmt.Errorf("%s: decompresses to more than the %d bytes a frame of a pack may hold: %w", where, size, ErrTooLarge)
	}
	if err != nil || (fh.HasFCS && uint64(len(f)) != size) {
		return nil, fmt.Errorf("%s: decompressing: %v (%d bytes): %w", where, err, len(f), ErrCorrupt)
	}
	return f, nil
}

// hasObject reports whether object id is in the store, packed or loose.
func (s *Store) hasObject(ctx context.Context, id images.Digest) (bool, error) {
	if _, ok, err := s.place(ctx, id); ok || err != nil {
		return ok, err
	}
	ok, err := s.b.Has(ctx, DigestHandle(KindObject, id))
	if ok || err != nil {
		return ok, err
	}
	if read, err := s.loadPackIndexes(ctx); err != nil || !read {
		return false, err
	}
	_, ok = s.lookup(id)
	return ok, nil
}

// frameObj is an object of a frame being written.
type frameObj struct {
	id       images.Digest
	off, len uint32
}

// packWriter appends compressed frames to packs and writes each pack,
// with its index, when it is full. Safe for concurrent use.
type packWriter struct {
	s       *Store
	durable bool

	mu      sync.Mutex
	buf     []byte
	entries []packEntry
}

// add appends a compressed frame holding objs and, when the pack is full,
// writes it.
func (w *packWriter) add(ctx context.Context, frame []byte, objs []frameObj) error {
	w.mu.Lock()
	if w.buf == nil {
		// Allocated once per pack at its largest: no copying as it grows.
		w.buf = make([]byte, 0, packTarget+compressedLimit(maxFrame))
	}
	off := int64(len(w.buf))
	w.buf = append(w.buf, frame...)
	for _, o := range objs {
		w.entries = append(w.entries, packEntry{id: o.id, loc: packLoc{frameOff: off, frameLen: uint32(len(frame)), objOff: o.off, objLen: o.len}})
	}
	var buf []byte
	var entries []packEntry
	if len(w.buf) >= packTarget || len(w.entries) > maxPackEntries-maxFrameObjs {
		buf, entries = w.buf, w.entries
		w.buf, w.entries = nil, nil
	}
	w.mu.Unlock()
	if buf == nil {
		return nil
	}
	return w.seal(ctx, buf, entries)
}

// flush writes the pack being filled.
func (w *packWriter) flush(ctx context.Context) error {
	w.mu.Lock()
	buf, entries := w.buf, w.entries
	w.buf, w.entries = nil, nil
	w.mu.Unlock()
	if len(buf) == 0 {
		return nil
	}
	return w.seal(ctx, buf, entries)
}

// seal writes a pack, then its index, and tells the store where its
// objects are.
func (w *packWriter) seal(ctx context.Context, buf []byte, entries []packEntry) error {
	id := images.Digest(sha256.Sum256(buf))
	for i := range entries {
		entries[i].pack = id
	}
	if err := w.s.b.Put(ctx, DigestHandle(KindPack, id), buf, w.durable); err != nil {
		return err
	}
	idx := formatPackIndex(entries)
	if err := w.s.b.Put(ctx, DigestHandle(KindPackIndex, id), idx, w.durable); err != nil {
		return err
	}
	packs, ids, locs, err := ParsePackIndex("written", idx)
	if err != nil {
		return err // a bug: what was just written does not parse
	}
	w.s.addIndex(packs, ids, locs)
	w.s.packs.mu.Lock()
	w.s.packs.loaded[id] = true
	w.s.packs.mu.Unlock()
	return nil
}

// imagePackEntries returns where every object of the image with manifest
// m (and multi-chunk lists ix) is, for its image pack index; objects not
// in a pack (loose, in a store being migrated) are left out: readers find
// them loose.
func (s *Store) imagePackEntries(m *images.Manifest, ix Index) []packEntry {
	s.packs.mu.RLock()
	defer s.packs.mu.RUnlock()
	var out []packEntry
	seen := map[images.Digest]bool{}
	add := func(id images.Digest) {
		if seen[id] {
			return
		}
		seen[id] = true
		if l, ok := s.packs.locs[id]; ok {
			out = append(out, packEntry{id: id, pack: s.packs.ids[l.pack], loc: l})
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

// storedSize is what object id costs a reader, compressed: its file, or
// its frame (a reader of a packed object fetches the whole frame).
func (s *Store) storedSize(ctx context.Context, id images.Digest) (int64, error) {
	l, ok, err := s.place(ctx, id)
	if err != nil {
		return 0, err
	}
	if !ok {
		raw, err := s.b.Get(ctx, DigestHandle(KindObject, id), compressedLimit(MaxChunk))
		if err == nil || !errors.Is(err, ErrNotFound) {
			return int64(len(raw)), err
		}
		if read, lerr := s.loadPackIndexes(ctx); lerr != nil || !read {
			return 0, cmpErr(lerr, err)
		}
		if l, ok = s.lookup(id); !ok {
			return 0, err
		}
	}
	return int64(l.frameLen), nil
}

// cmpErr is a when it is not nil, else b.
func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
