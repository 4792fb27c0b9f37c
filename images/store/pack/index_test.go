package pack

import (
	"errors"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/images/store/chunks"
)

// ParseIndex refuses every index FormatIndex would not write, and
// every entry that could make a reader look outside its frame.
func TestParsePackIndexRefuses(t *testing.T) {
	a, b, c := images.Sum([]byte("a")), images.Sum([]byte("b")), images.Sum([]byte("c"))
	p1, p2 := images.Sum([]byte("p1")), images.Sum([]byte("p2"))
	e := func(id, pack images.Digest, fOff int64, fLen, oOff, oLen uint32) Entry {
		return Entry{ID: id, Pack: pack, Loc: Loc{FrameOff: fOff, FrameLen: fLen, ObjOff: oOff, ObjLen: oLen}}
	}
	good := []Entry{e(a, p1, 0, 100, 0, 10), e(b, p1, 0, 100, 10, 20), e(c, p2, 4096, 5000, 0, chunks.MaxChunk)}
	if _, ids, _, err := ParseIndex("good", FormatIndex(good)); err != nil || len(ids) != 3 {
		t.Fatalf("a sound index: %d ids, %v", len(ids), err)
	}
	cases := map[string][]Entry{
		"objects overlap in a frame":    {e(a, p1, 0, 100, 0, 10), e(b, p1, 0, 100, 5, 20)},
		"one frame, two lengths":        {e(a, p1, 0, 100, 0, 10), e(b, p1, 0, 90, 10, 20)},
		"frames overlap":                {e(a, p1, 0, 100, 0, 10), e(b, p1, 50, 100, 0, 20)},
		"empty object":                  {e(a, p1, 0, 100, 0, 0)},
		"object larger than a chunk":    {e(a, p1, 0, 100, 0, chunks.MaxChunk+1)},
		"object past the largest frame": {e(a, p1, 0, 100, MaxFrame-5, 10)},
		"empty frame":                   {e(a, p1, 0, 0, 0, 10)},
		"frame longer than any":         {e(a, p1, 0, uint32(CompressedLimit(MaxFrame))+1, 0, 10)},
		"frame past the largest pack":   {e(a, p1, maxBytes-50, 100, 0, 10)},
		"frame at a negative offset":    {e(a, p1, -100, 100, 0, 10)},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			if _, _, _, err := ParseIndex(name, FormatIndex(entries)); !errors.Is(err, backend.ErrCorrupt) {
				t.Errorf("err = %v, want ErrCorrupt", err)
			}
		})
	}
	// Byte-level damage: a duplicate id, ids out of order, a pack no entry
	// uses, a length that is not the header's.
	raw := FormatIndex(good)
	dup := append([]byte(nil), raw...)
	copy(dup[indexHead+2*32+entrySize:], dup[indexHead+2*32:indexHead+2*32+32])
	swapped := append([]byte(nil), raw...)
	copy(swapped[indexHead+2*32:], raw[indexHead+2*32+entrySize:indexHead+2*32+2*entrySize])
	copy(swapped[indexHead+2*32+entrySize:], raw[indexHead+2*32:indexHead+2*32+entrySize])
	// Two packs named; the entry of the first moved to the second.
	unused := FormatIndex([]Entry{e(a, images.Digest{}, 0, 100, 0, 10), e(b, p1, 0, 100, 10, 20)})
	for i := range 2 {
		pk := unused[indexHead+2*32+i*entrySize+32:]
		if pk[3] == 0 {
			pk[3] = 1
		}
	}
	if _, _, _, err := ParseIndex("unused", unused); err == nil || !strings.Contains(err.Error(), "pack 0 has no entry") {
		t.Errorf("unused pack: err = %v, want one saying pack 0 has no entry", err)
	}
	for name, data := range map[string][]byte{"duplicate id": dup, "ids out of order": swapped, "unused pack": unused, "short": raw[:len(raw)-1], "long": append(raw, 0)} {
		if _, _, _, err := ParseIndex(name, data); !errors.Is(err, backend.ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}
