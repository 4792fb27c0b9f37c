package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/chunks"
)

// A pack index maps objects to where they are in packs (layout v2). Its
// bytes (not compressed: they are mostly hashes):
//
//	"ingot-packidx-1\n"                 16 bytes
//	packs   uint32 big-endian           how many packs it names
//	entries uint32 big-endian
//	packs × [32]byte                    pack ids, strictly ascending
//	entries × 56 bytes, ascending by object id, no id twice:
//	  id        [32]byte                sha256 of the object's bytes
//	  pack      uint32                  number of the pack in the list above
//	  frameOff  uint64                  where the object's zstd frame starts in the pack
//	  frameLen  uint32                  the frame's compressed length
//	  objOff    uint32                  where the object starts in the decompressed frame
//	  objLen    uint32                  the object's length
//
// One index per pack (packindex/<pack>) lists that pack's objects; one per
// image (imagepacks/<image>) lists every object the image needs, in any
// pack. Frames of one pack do not overlap, nor do objects of one frame.
const (
	packIndexMagic = "ingot-packidx-1\n"
	packIndexHead  = len(packIndexMagic) + 8
	packEntrySize  = 32 + 4 + 8 + 4 + 4 + 4

	// maxFrame bounds a frame's decompressed bytes: the writer closes a
	// frame once it holds frameTarget bytes, and an object is at most
	// MaxChunk.
	maxFrame = frameTarget + MaxChunk
	// maxPackBytes bounds where a frame may lie in a pack.
	maxPackBytes = 1 << 32
	// maxPackEntries bounds the objects of one pack (and so its index).
	maxPackEntries = 1 << 16
	// maxPackIndex bounds a pack index read without knowing more: a
	// pack's own (at most maxPackEntries entries), or an image's read
	// without its manifest (about 1.2 million objects).
	maxPackIndex = 64 << 20
)

// packLoc is where an object is: in pack number pack of its index.
type packLoc struct {
	pack     int32
	frameLen uint32
	frameOff int64
	objOff   uint32
	objLen   uint32
}

// packEntry is one entry of a pack index.
type packEntry struct {
	id   images.Digest
	pack images.Digest
	loc  packLoc // loc.pack unused here
}

// PackIndexLimit is the most bytes the image pack index of m can take: an
// entry (and a pack) per object of its regular files.
func PackIndexLimit(m *images.Manifest) int64 {
	var n int64
	seen := map[images.Digest]bool{}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Type != images.TypeFile || e.Size == 0 || seen[e.SHA256] {
			continue
		}
		seen[e.SHA256] = true
		n += chunks.MaxChunks(e.Size)
	}
	return int64(packIndexHead) + n*(packEntrySize+32)
}

// formatPackIndex returns the index of entries (in any order; sorted here).
func formatPackIndex(entries []packEntry) []byte {
	slices.SortFunc(entries, func(a, b packEntry) int { return bytes.Compare(a.id[:], b.id[:]) })
	var packs []images.Digest
	for _, e := range entries {
		packs = append(packs, e.pack)
	}
	slices.SortFunc(packs, func(a, b images.Digest) int { return bytes.Compare(a[:], b[:]) })
	packs = slices.Compact(packs)
	out := make([]byte, 0, packIndexHead+32*len(packs)+packEntrySize*len(entries))
	out = append(out, packIndexMagic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(packs)))
	out = binary.BigEndian.AppendUint32(out, uint32(len(entries)))
	for _, p := range packs {
		out = append(out, p[:]...)
	}
	for _, e := range entries {
		n, _ := slices.BinarySearchFunc(packs, e.pack, func(a, b images.Digest) int { return bytes.Compare(a[:], b[:]) })
		out = append(out, e.id[:]...)
		out = binary.BigEndian.AppendUint32(out, uint32(n))
		out = binary.BigEndian.AppendUint64(out, uint64(e.loc.frameOff))
		out = binary.BigEndian.AppendUint32(out, e.loc.frameLen)
		out = binary.BigEndian.AppendUint32(out, e.loc.objOff)
		out = binary.BigEndian.AppendUint32(out, e.loc.objLen)
	}
	return out
}

// ParsePackIndex checks and decodes a pack index (what names it in
// errors): the packs it names and, per object, where it is (loc.pack a
// number into the packs). It accepts only what formatPackIndex writes:
// sorted, no duplicates, every frame and object within its bounds, no two
// frames of a pack overlapping, no two objects of a frame overlapping.
// Every error wraps ErrCorrupt.
func ParsePackIndex(what string, data []byte) (packs []images.Digest, ids []images.Digest, locs []packLoc, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("pack index %s: %s: %w", what, fmt.Sprintf(format, args...), ErrCorrupt)
	}
	if len(data) < packIndexHead || string(data[:len(packIndexMagic)]) != packIndexMagic {
		return nil, nil, nil, bad("no %q header", packIndexMagic[:len(packIndexMagic)-1])
	}
	np := int64(binary.BigEndian.Uint32(data[16:]))
	ne := int64(binary.BigEndian.Uint32(data[20:]))
	if want := int64(packIndexHead) + 32*np + packEntrySize*ne; int64(len(data)) != want {
		return nil, nil, nil, bad("%d bytes, its header (%d packs, %d entries) says %d", len(data), np, ne, want)
	}
	if np > ne || (np == 0) != (ne == 0) {
		return nil, nil, nil, bad("%d packs for %d entries", np, ne)
	}
	p := data[packIndexHead:]
	packs = make([]images.Digest, np)
	for i := range packs {
		copy(packs[i][:], p[32*i:])
		if i > 0 && bytes.Compare(packs[i-1][:], packs[i][:]) >= 0 {
			return nil, nil, nil, bad("pack ids not in ascending order at %d", i)
		}
	}
	p = p[32*np:]
	ids = make([]images.Digest, ne)
	locs = make([]packLoc, ne)
	used := make([]bool, np)
	for i := range ids {
		e := p[packEntrySize*i:]
		copy(ids[i][:], e)
		if i > 0 && bytes.Compare(ids[i-1][:], ids[i][:]) >= 0 {
			return nil, nil, nil, bad("object ids not in strictly ascending order at entry %d", i)
		}
		pk := binary.BigEndian.Uint32(e[32:])
		l := packLoc{frameOff: int64(binary.BigEndian.Uint64(e[36:])), frameLen: binary.BigEndian.Uint32(e[44:]),
			objOff: binary.BigEndian.Uint32(e[48:]), objLen: binary.BigEndian.Uint32(e[52:])}
		switch {
		case int64(pk) >= np:
			return nil, nil, nil, bad("entry %d: pack number %d of %d", i, pk, np)
		case l.frameLen == 0 || int64(l.frameLen) > compressedLimit(maxFrame):
			return nil, nil, nil, bad("entry %d: frame of %d bytes (at most %d)", i, l.frameLen, compressedLimit(maxFrame))
		case l.frameOff < 0 || l.frameOff > maxPackBytes-int64(l.frameLen):
			return nil, nil, nil, bad("entry %d: frame at %d, past %d bytes", i, uint64(l.frameOff), int64(maxPackBytes))
		case l.objLen == 0 || l.objLen > MaxChunk:
			return nil, nil, nil, bad("entry %d: object of %d bytes (1 to %d)", i, l.objLen, MaxChunk)
		case int64(l.objOff)+int64(l.objLen) > maxFrame:
			return nil, nil, nil, bad("entry %d: object ends at %d of its frame, past %d", i, int64(l.objOff)+int64(l.objLen), maxFrame)
		}
		l.pack = int32(pk)
		used[pk] = true
		locs[i] = l
	}
	for i, u := range used {
		if !u {
			return nil, nil, nil, bad("pack %d has no entry", i)
		}
	}
	// Frames of a pack must not overlap; objects of a frame neither.
	order := make([]int, ne)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		x, y := locs[a], locs[b]
		return cmp.Or(cmp.Compare(x.pack, y.pack), cmp.Compare(x.frameOff, y.frameOff), cmp.Compare(x.objOff, y.objOff))
	})
	for k := 1; k < len(order); k++ {
		a, b := locs[order[k-1]], locs[order[k]]
		if a.pack != b.pack {
			continue
		}
		if a.frameOff == b.frameOff {
			if a.frameLen != b.frameLen {
				return nil, nil, nil, bad("objects %s and %s: one frame at %d with lengths %d and %d", ids[order[k-1]], ids[order[k]], a.frameOff, a.frameLen, b.frameLen)
			}
			if int64(a.objOff)+int64(a.objLen) > int64(b.objOff) {
				return nil, nil, nil, bad("objects %s and %s overlap in their frame", ids[order[k-1]], ids[order[k]])
			}
			continue
		}
		if a.frameOff+int64(a.frameLen) > b.frameOff {
			return nil, nil, nil, bad("frames at %d and %d of pack %s overlap", a.frameOff, b.frameOff, packs[a.pack])
		}
	}
	return packs, ids, locs, nil
}
