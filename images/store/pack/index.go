package pack

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/backend"
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
	indexMagic = "ingot-packidx-1\n"
	indexHead  = len(indexMagic) + 8
	entrySize  = 32 + 4 + 8 + 4 + 4 + 4

	// MaxFrame bounds a frame's decompressed bytes: the writer closes a
	// frame once it holds FrameTarget bytes, and an object is at most
	// chunks.MaxChunk.
	MaxFrame = FrameTarget + chunks.MaxChunk
	// maxBytes bounds where a frame may lie in a pack.
	maxBytes = 1 << 32
	// maxEntries bounds the objects of one pack (and so its index).
	maxEntries = 1 << 16
	// MaxIndex bounds a pack index read without knowing more: a
	// pack's own (at most maxEntries entries), or an image's read
	// without its manifest (about 1.2 million objects).
	MaxIndex = 64 << 20
)

// Loc is where an object is: in pack number Pack (of the index it was
// read from, or of the Set that holds it), in the frame of FrameLen
// compressed bytes at FrameOff, at ObjOff in the decompressed frame,
// ObjLen bytes.
type Loc struct {
	Pack     int32
	FrameLen uint32
	FrameOff int64
	ObjOff   uint32
	ObjLen   uint32
}

// Entry is one entry of a pack index: object ID is at Loc in pack Pack.
type Entry struct {
	ID   images.Digest
	Pack images.Digest
	Loc  Loc // Loc.Pack unused here
}

// IndexLimit is the most bytes the image pack index of m can take: an
// entry (and a pack) per object of its regular files.
func IndexLimit(m *images.Manifest) int64 {
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
	return int64(indexHead) + n*(entrySize+32)
}

// FormatIndex returns the index of entries (in any order; sorted here).
func FormatIndex(entries []Entry) []byte {
	slices.SortFunc(entries, func(a, b Entry) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	var packs []images.Digest
	for _, e := range entries {
		packs = append(packs, e.Pack)
	}
	slices.SortFunc(packs, func(a, b images.Digest) int { return bytes.Compare(a[:], b[:]) })
	packs = slices.Compact(packs)
	out := make([]byte, 0, indexHead+32*len(packs)+entrySize*len(entries))
	out = append(out, indexMagic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(packs)))
	out = binary.BigEndian.AppendUint32(out, uint32(len(entries)))
	for _, p := range packs {
		out = append(out, p[:]...)
	}
	for _, e := range entries {
		n, _ := slices.BinarySearchFunc(packs, e.Pack, func(a, b images.Digest) int { return bytes.Compare(a[:], b[:]) })
		out = append(out, e.ID[:]...)
		out = binary.BigEndian.AppendUint32(out, uint32(n))
		out = binary.BigEndian.AppendUint64(out, uint64(e.Loc.FrameOff))
		out = binary.BigEndian.AppendUint32(out, e.Loc.FrameLen)
		out = binary.BigEndian.AppendUint32(out, e.Loc.ObjOff)
		out = binary.BigEndian.AppendUint32(out, e.Loc.ObjLen)
	}
	return out
}

// ParseIndex checks and decodes a pack index (what names it in
// errors): the packs it names and, per object, where it is (Loc.Pack a
// number into the packs). It accepts only what FormatIndex writes:
// sorted, no duplicates, every frame and object within its bounds, no two
// frames of a pack overlapping, no two objects of a frame overlapping.
// Every error wraps backend.ErrCorrupt.
func ParseIndex(what string, data []byte) (packs []images.Digest, ids []images.Digest, locs []Loc, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("pack index %s: %s: %w", what, fmt.Sprintf(format, args...), backend.ErrCorrupt)
	}
	if len(data) < indexHead || string(data[:len(indexMagic)]) != indexMagic {
		return nil, nil, nil, bad("no %q header", indexMagic[:len(indexMagic)-1])
	}
	np := int64(binary.BigEndian.Uint32(data[16:]))
	ne := int64(binary.BigEndian.Uint32(data[20:]))
	if want := int64(indexHead) + 32*np + entrySize*ne; int64(len(data)) != want {
		return nil, nil, nil, bad("%d bytes, its header (%d packs, %d entries) says %d", len(data), np, ne, want)
	}
	if np > ne || (np == 0) != (ne == 0) {
		return nil, nil, nil, bad("%d packs for %d entries", np, ne)
	}
	p := data[indexHead:]
	packs = make([]images.Digest, np)
	for i := range packs {
		copy(packs[i][:], p[32*i:])
		if i > 0 && bytes.Compare(packs[i-1][:], packs[i][:]) >= 0 {
			return nil, nil, nil, bad("pack ids not in ascending order at %d", i)
		}
	}
	p = p[32*np:]
	ids = make([]images.Digest, ne)
	locs = make([]Loc, ne)
	used := make([]bool, np)
	for i := range ids {
		e := p[entrySize*i:]
		copy(ids[i][:], e)
		if i > 0 && bytes.Compare(ids[i-1][:], ids[i][:]) >= 0 {
			return nil, nil, nil, bad("object ids not in strictly ascending order at entry %d", i)
		}
		pk := binary.BigEndian.Uint32(e[32:])
		l := Loc{FrameOff: int64(binary.BigEndian.Uint64(e[36:])), FrameLen: binary.BigEndian.Uint32(e[44:]),
			ObjOff: binary.BigEndian.Uint32(e[48:]), ObjLen: binary.BigEndian.Uint32(e[52:])}
		switch {
		case int64(pk) >= np:
			return nil, nil, nil, bad("entry %d: pack number %d of %d", i, pk, np)
		case l.FrameLen == 0 || int64(l.FrameLen) > CompressedLimit(MaxFrame):
			return nil, nil, nil, bad("entry %d: frame of %d bytes (at most %d)", i, l.FrameLen, CompressedLimit(MaxFrame))
		case l.FrameOff < 0 || l.FrameOff > maxBytes-int64(l.FrameLen):
			return nil, nil, nil, bad("entry %d: frame at %d, past %d bytes", i, uint64(l.FrameOff), int64(maxBytes))
		case l.ObjLen == 0 || l.ObjLen > chunks.MaxChunk:
			return nil, nil, nil, bad("entry %d: object of %d bytes (1 to %d)", i, l.ObjLen, chunks.MaxChunk)
		case int64(l.ObjOff)+int64(l.ObjLen) > MaxFrame:
			return nil, nil, nil, bad("entry %d: object ends at %d of its frame, past %d", i, int64(l.ObjOff)+int64(l.ObjLen), MaxFrame)
		}
		l.Pack = int32(pk)
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
		return cmp.Or(cmp.Compare(x.Pack, y.Pack), cmp.Compare(x.FrameOff, y.FrameOff), cmp.Compare(x.ObjOff, y.ObjOff))
	})
	for k := 1; k < len(order); k++ {
		a, b := locs[order[k-1]], locs[order[k]]
		if a.Pack != b.Pack {
			continue
		}
		if a.FrameOff == b.FrameOff {
			if a.FrameLen != b.FrameLen {
				return nil, nil, nil, bad("objects %s and %s: one frame at %d with lengths %d and %d", ids[order[k-1]], ids[order[k]], a.FrameOff, a.FrameLen, b.FrameLen)
			}
			if int64(a.ObjOff)+int64(a.ObjLen) > int64(b.ObjOff) {
				return nil, nil, nil, bad("objects %s and %s overlap in their frame", ids[order[k-1]], ids[order[k]])
			}
			continue
		}
		if a.FrameOff+int64(a.FrameLen) > b.FrameOff {
			return nil, nil, nil, bad("frames at %d and %d of pack %s overlap", a.FrameOff, b.FrameOff, packs[a.Pack])
		}
	}
	return packs, ids, locs, nil
}
