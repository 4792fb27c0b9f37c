package chunks

import (
	"bytes"
	"testing"

	"github.com/ingotfleet/ingot/images"
)

// Chunk lists and indexes arrive over the network: their parsers must
// refuse garbage without panicking, and what they accept must print back
// to the same bytes.
func FuzzParseChunkList(f *testing.F) {
	a, b := images.Sum([]byte("a")), images.Sum([]byte("b"))
	f.Add(FormatChunkList([]Chunk{{a, 100}, {b, MaxChunk}}))
	f.Add([]byte(a.String() + " 1\n"))
	f.Add([]byte(a.String() + " 01\n" + b.String() + " 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := ParseChunkList("fuzz", data)
		if err != nil {
			return
		}
		if !bytes.Equal(FormatChunkList(cs), data) {
			t.Errorf("accepted %q, which prints back as %q", data, FormatChunkList(cs))
		}
	})
}

func FuzzParseIndex(f *testing.F) {
	a, b, c := images.Sum([]byte("a")), images.Sum([]byte("b")), images.Sum([]byte("c"))
	f.Add(FormatIndex(Index{a: {{b, 10}, {c, 20}}, b: {{a, 1}, {a, 1}}}))
	f.Add([]byte(a.String() + " " + b.String() + " 5\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := ParseIndex("fuzz", data)
		if err != nil {
			return
		}
		if !bytes.Equal(FormatIndex(ix), data) {
			t.Errorf("accepted %q, which prints back as %q", data, FormatIndex(ix))
		}
	})
}
