package pack

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/images/store/chunks"
)

// Pack indexes arrive over the network too: the parser refuses what
// FormatIndex would not write, and what it accepts prints back the same.
func FuzzParsePackIndex(f *testing.F) {
	a, b, c := images.Sum([]byte("a")), images.Sum([]byte("b")), images.Sum([]byte("c"))
	p1, p2 := images.Sum([]byte("p1")), images.Sum([]byte("p2"))
	f.Add(FormatIndex([]Entry{
		{ID: a, Pack: p1, Loc: Loc{FrameOff: 0, FrameLen: 100, ObjOff: 0, ObjLen: 10}},
		{ID: b, Pack: p1, Loc: Loc{FrameOff: 0, FrameLen: 100, ObjOff: 10, ObjLen: 20}},
		{ID: c, Pack: p2, Loc: Loc{FrameOff: 4096, FrameLen: 5000, ObjOff: 0, ObjLen: chunks.MaxChunk}},
	}))
	f.Add(FormatIndex(nil))
	f.Add([]byte(indexMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		packs, ids, locs, err := ParseIndex("fuzz", data)
		if err != nil {
			if !errors.Is(err, backend.ErrCorrupt) {
				t.Errorf("error %v does not wrap backend.ErrCorrupt", err)
			}
			return
		}
		entries := make([]Entry, len(ids))
		for i := range ids {
			entries[i] = Entry{ID: ids[i], Pack: packs[locs[i].Pack], Loc: locs[i]}
		}
		if out := FormatIndex(entries); !bytes.Equal(out, data) {
			t.Errorf("accepted %x, which prints back as %x", data, out)
		}
	})
}
