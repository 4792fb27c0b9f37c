package store

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
	f.Add(formatChunkList([]Chunk{{a, 100}, {b, MaxChunk}}))
	f.Add([]byte(a.String() + " 1\n"))
	f.Add([]byte(a.String() + " 01\n" + b.String() + " 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := ParseChunkList("fuzz", data)
		if err != nil {
			return
		}
		if !bytes.Equal(formatChunkList(cs), data) {
			t.Errorf("accepted %q, which prints back as %q", data, formatChunkList(cs))
		}
	})
}

func FuzzParseIndex(f *testing.F) {
	a, b, c := images.Sum([]byte("a")), images.Sum([]byte("b")), images.Sum([]byte("c"))
	f.Add(formatIndex(Index{a: {{b, 10}, {c, 20}}, b: {{a, 1}, {a, 1}}}))
	f.Add([]byte(a.String() + " " + b.String() + " 5\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := ParseIndex("fuzz", data)
		if err != nil {
			return
		}
		if !bytes.Equal(formatIndex(ix), data) {
			t.Errorf("accepted %q, which prints back as %q", data, formatIndex(ix))
		}
	})
}

// ParsePath decides what the HTTP server serves: what it accepts must be a
// valid handle whose Path is the input.
func FuzzParsePath(f *testing.F) {
	d := images.Sum(nil).String()
	for _, s := range []string{"objects/" + d[:2] + "/" + d, "images/" + d, "refs/web/v1", "refs/../x", "lists/" + d, "tmp/.put-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		h, err := ParsePath(p)
		if err != nil {
			return
		}
		if h.Valid() != nil || h.Path() != p {
			t.Errorf("ParsePath(%q) = %+v, path %q", p, h, h.Path())
		}
	})
}
