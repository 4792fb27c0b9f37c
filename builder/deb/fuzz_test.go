package deb_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/deb"
)

// FuzzReader: any bytes give a package or an error, never a panic, a hang
// or an unbounded allocation. Seeds: testdata/fuzz/FuzzReader (real
// dpkg-deb output in every compression).
func FuzzReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := deb.NewReaderOptions(bytes.NewReader(b), "fuzz.deb", deb.ReaderOptions{GoXZ: true})
		if err != nil {
			return
		}
		c, err := r.Control()
		if err != nil {
			return
		}
		_ = c.Conffiles()
		tr, err := r.Data()
		if err != nil {
			return
		}
		defer tr.Close()
		for {
			if _, err := tr.Next(); err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, io.LimitReader(tr, 1<<20)); err != nil {
				return
			}
		}
	})
}

func FuzzParseParagraphs(f *testing.F) {
	f.Add("Package: a\nVersion: 1\nDescription: x\n y\n")
	f.Add("Package: a\n\nPackage: b\nConffiles:\n /etc/x 0\n")
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := deb.ParseParagraphs(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		// What parses, prints and parses back the same.
		var b bytes.Buffer
		for _, p := range ps {
			p.WriteTo(&b)
			b.WriteString("\n")
		}
		again, err := deb.ParseParagraphs(&b, "again")
		if err != nil {
			t.Fatalf("re-parsing %q: %v", b.String(), err)
		}
		if len(again) != len(ps) {
			t.Fatalf("%d paragraphs became %d", len(ps), len(again))
		}
	})
}
