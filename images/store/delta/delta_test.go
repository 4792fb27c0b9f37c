package delta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// Deltas arrive over the network: applying garbage must fail cleanly, and
// anything accepted must be exactly the content asked for.
func FuzzApplyDelta(f *testing.F) {
	old := bytes.Repeat([]byte("the old version of a library, "), 40)
	nw := append(bytes.Clone(old[:500]), []byte("patched")...)
	nw = append(nw, old[507:]...)
	good, err := Encode(old, nw, Level)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, nw)
	f.Add(good[:len(good)/2], nw)
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0x58, 0, 0, 0}, []byte{})
	f.Add([]byte("not zstd"), []byte("x"))
	f.Add(append([]byte(gzDeltaMagic), 9, 1, 0, 0, 0, 0, 0, 0, 0, 0x28, 0xb5, 0x2f, 0xfd), []byte("x"))
	from := images.Sum(old)
	f.Fuzz(func(t *testing.T, delta, want []byte) {
		to := images.Sum(want)
		got, err := Apply("fuzz", delta, old, from, to, int64(len(want)))
		if err != nil {
			if !errors.Is(err, backend.ErrCorrupt) && !errors.Is(err, backend.ErrTooLarge) {
				t.Fatalf("error does not wrap backend.ErrCorrupt or backend.ErrTooLarge: %v", err)
			}
			return
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("accepted a delta rebuilding %d bytes that are not the %d asked for", len(got), len(want))
		}
	})
}

// gzipN compresses b as gzip -9n does (the tests' gzip files).
func gzipN(t testing.TB, b []byte) []byte {
	t.Helper()
	z, err := gzipAt(b, 9, int64(len(b))+1024)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// A changed gzip file (a package's changelog) gets its delta on the
// decompressed content, recompressed by gzip to exactly its bytes; a
// delta that would recompress to other bytes, or claims more than it
// may, is refused.
func TestGzipDelta(t *testing.T) {
	testenv.RequireTool(t, "gzip", "gzip")
	var text bytes.Buffer
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&text, "pkg (1.%d) bookworm; urgency=medium\n  * fix number %d\n", i, i*7919%10007)
	}
	old := gzipN(t, text.Bytes())
	nw := gzipN(t, append([]byte("pkg (2.0) bookworm-security; urgency=high\n  * CVE-2026-0001\n"), text.Bytes()...))
	plain, err := Encode(old, nw, Level)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Best(old, nw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(d, []byte(gzDeltaMagic)) || len(d)*4 > len(plain) {
		t.Fatalf("delta of a gzip file: %d bytes (gzip delta: %v), the plain one %d", len(d), bytes.HasPrefix(d, []byte(gzDeltaMagic)), len(plain))
	}
	from, to := images.Sum(old), images.Sum(nw)
	got, err := Apply("t", d, old, from, to, int64(len(nw)))
	if err != nil || !bytes.Equal(got, nw) {
		t.Fatalf("Apply: %v (%d bytes, want %d)", err, len(got), len(nw))
	}
	// Recompressed at another level the bytes differ: refused as corrupt.
	other := bytes.Clone(d)
	other[len(gzDeltaMagic)] = 1
	if _, err := Apply("t", other, old, from, to, int64(len(nw))); !errors.Is(err, backend.ErrCorrupt) {
		t.Fatalf("a delta recompressing at another level: %v, want backend.ErrCorrupt", err)
	}
	// A header claiming more than GzMaxRaw is refused before decoding.
	big := bytes.Clone(d)
	binary.LittleEndian.PutUint64(big[len(gzDeltaMagic)+1:], GzMaxRaw+1)
	if _, err := Apply("t", big, old, from, to, int64(len(nw))); !errors.Is(err, backend.ErrTooLarge) {
		t.Fatalf("a delta claiming %d bytes: %v, want backend.ErrTooLarge", GzMaxRaw+1, err)
	}
	// A gzip file that gzip -n does not reproduce (written with a name)
	// gets a plain delta.
	named := bytes.Clone(nw)
	named[3] = 8
	if g := encodeGzDelta(old, named); g != nil {
		t.Fatal("a gzip delta for a file gzip -n does not write")
	}
}

// Delta packs arrive over the network: garbage fails cleanly, what is
// accepted stays within the limits, and a pack made here reads back.
func FuzzParseDeltaPack(f *testing.F) {
	k1 := Key{images.Sum([]byte("a")), images.Sum([]byte("b"))}
	k2 := Key{images.Sum([]byte("c")), images.Sum([]byte("d"))}
	packs := EncodePacks(map[Key][]byte{k1: []byte("small delta"), k2: bytes.Repeat([]byte("x"), PackedMax+1)})
	if len(packs) != 1 {
		f.Fatalf("%d packs, want 1", len(packs))
	}
	p, err := ParsePack(packs[0])
	if err != nil || string(p.Bodies[k1]) != "small delta" || len(p.Alone) != 1 || p.Alone[0] != k2 || p.More {
		f.Fatalf("pack read back: %+v %v", p, err)
	}
	f.Add(packs[0])
	f.Add(packs[0][:len(packs[0])-3])
	f.Add([]byte(packMagic + "\xff\xff\xff\xff\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePack(b)
		if err != nil {
			if !errors.Is(err, backend.ErrCorrupt) {
				t.Fatalf("error does not wrap backend.ErrCorrupt: %v", err)
			}
			return
		}
		total := 0
		for _, body := range p.Bodies {
			if len(body) > PackedMax {
				t.Fatalf("a packed delta of %d bytes", len(body))
			}
			total += len(body)
		}
		if total > len(b) || len(p.Bodies)+len(p.Alone) > maxPackEntries {
			t.Fatalf("pack of %d bytes gave %d bytes of bodies, %d entries", len(b), total, len(p.Bodies)+len(p.Alone))
		}
	})
}

// TestApplyBase: the base is checked against from (hashed once, by
// NewBase); a base of other content is refused before any decoding.
func TestApplyBase(t *testing.T) {
	old := bytes.Repeat([]byte("old version of a file\n"), 100)
	nw := append(bytes.Clone(old), "one line more\n"...)
	d, err := Encode(old, nw, Level)
	if err != nil {
		t.Fatal(err)
	}
	from, to := images.Sum(old), images.Sum(nw)
	base := NewBase(old)
	if base.Sum() != from || !bytes.Equal(base.Bytes(), old) {
		t.Fatalf("NewBase: sum %s, want %s", base.Sum(), from)
	}
	got, err := ApplyBase("t", d, base, from, to, int64(len(nw)))
	if err != nil || !bytes.Equal(got, nw) {
		t.Fatalf("ApplyBase: %v (%d bytes, want %d)", err, len(got), len(nw))
	}
	other := NewBase(append(bytes.Clone(old), 'x'))
	if _, err := ApplyBase("t", d, other, from, to, int64(len(nw))); err == nil || !strings.Contains(err.Error(), "does not hash to") {
		t.Fatalf("ApplyBase with other old content: %v, want refused", err)
	}
}
