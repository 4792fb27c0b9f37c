package pack

import (
	"context"
	"crypto/sha256"
	"sync"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/backend"
)

// FrameObj is an object of a frame being written: ID, at Off in the
// decompressed frame, Len bytes.
type FrameObj struct {
	ID       images.Digest
	Off, Len uint32
}

// Writer appends compressed frames to packs and writes each pack, with
// its index, when it is full, telling its Set where the objects are.
// Safe for concurrent use.
type Writer struct {
	set     *Set
	durable bool

	mu      sync.Mutex
	buf     []byte
	entries []Entry
}

// NewWriter returns a Writer of packs to the backend of set, durable on
// return of each write when durable.
func NewWriter(set *Set, durable bool) *Writer {
	return &Writer{set: set, durable: durable}
}

// Add appends a compressed frame holding objs and, when the pack is full,
// writes it.
func (w *Writer) Add(ctx context.Context, frame []byte, objs []FrameObj) error {
	w.mu.Lock()
	if w.buf == nil {
		// Allocated once per pack at its largest: no copying as it grows.
		w.buf = make([]byte, 0, packTarget+CompressedLimit(MaxFrame))
	}
	off := int64(len(w.buf))
	w.buf = append(w.buf, frame...)
	for _, o := range objs {
		w.entries = append(w.entries, Entry{ID: o.ID, Loc: Loc{FrameOff: off, FrameLen: uint32(len(frame)), ObjOff: o.Off, ObjLen: o.Len}})
	}
	var buf []byte
	var entries []Entry
	if len(w.buf) >= packTarget || len(w.entries) > maxEntries-MaxFrameObjs {
		buf, entries = w.buf, w.entries
		w.buf, w.entries = nil, nil
	}
	w.mu.Unlock()
	if buf == nil {
		return nil
	}
	return w.seal(ctx, buf, entries)
}

// Flush writes the pack being filled.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	buf, entries := w.buf, w.entries
	w.buf, w.entries = nil, nil
	w.mu.Unlock()
	if len(buf) == 0 {
		return nil
	}
	return w.seal(ctx, buf, entries)
}

// seal writes a pack, then its index, and tells the set where its
// objects are.
func (w *Writer) seal(ctx context.Context, buf []byte, entries []Entry) error {
	id := images.Digest(sha256.Sum256(buf))
	for i := range entries {
		entries[i].Pack = id
	}
	b := w.set.b
	if err := b.Put(ctx, backend.DigestHandle(backend.KindPack, id), buf, w.durable); err != nil {
		return err
	}
	idx := FormatIndex(entries)
	if err := b.Put(ctx, backend.DigestHandle(backend.KindPackIndex, id), idx, w.durable); err != nil {
		return err
	}
	packs, ids, locs, err := ParseIndex("written", idx)
	if err != nil {
		return err // a bug: what was just written does not parse
	}
	w.set.Add(packs, ids, locs)
	w.set.markLoaded(id)
	return nil
}
