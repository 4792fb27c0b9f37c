package chunks

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// oneByteReader hands out one byte per Read, to prove boundaries do not
// depend on how the input arrives.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

func chunkSizes(t testing.TB, r io.Reader) []int {
	t.Helper()
	var sizes []int
	c := NewChunker(r)
	for {
		b, err := c.Next()
		if err == io.EOF {
			return sizes
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(b))
	}
}

func chunkIDs(t testing.TB, data []byte) []images.Digest {
	t.Helper()
	var ids []images.Digest
	c := NewChunker(bytes.NewReader(data))
	for {
		b, err := c.Next()
		if err == io.EOF {
			return ids
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sha256.Sum256(b))
	}
}

func TestChunkerBounds(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"tiny", []byte("x")},
		{"min", randomBytes(1, MinChunk)},
		{"random 8MiB", randomBytes(2, 8<<20)},
		{"zeroes 3MiB", make([]byte, 3<<20)},
		{"text", bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 100000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sizes := chunkSizes(t, bytes.NewReader(tc.data))
			total := 0
			for i, s := range sizes {
				total += s
				if s > MaxChunk || (s < MinChunk && i != len(sizes)-1) || s == 0 {
					t.Errorf("chunk %d is %d bytes, outside [%d, %d]", i, s, MinChunk, MaxChunk)
				}
			}
			if total != len(tc.data) {
				t.Errorf("chunks add up to %d bytes, want %d", total, len(tc.data))
			}
			if len(tc.data) == 0 && len(sizes) != 0 {
				t.Errorf("empty input gave %d chunks", len(sizes))
			}
			// Same boundaries whatever the read sizes.
			if len(tc.data) <= 1<<20 {
				if got := chunkSizes(t, oneByteReader{bytes.NewReader(tc.data)}); fmt.Sprint(got) != fmt.Sprint(sizes) {
					t.Errorf("one byte at a time: %v, want %v", got, sizes)
				}
			}
		})
	}
}

// The average on random data is near AvgChunk.
func TestChunkerAverage(t *testing.T) {
	data := randomBytes(3, 32<<20)
	sizes := chunkSizes(t, bytes.NewReader(data))
	avg := len(data) / len(sizes)
	if avg < AvgChunk*3/4 || avg > AvgChunk*5/4 {
		t.Errorf("average chunk %d bytes over %d chunks, want within 25%% of %d", avg, len(sizes), AvgChunk)
	}
}

// The boundaries are part of the store format: they must never change.
// The golden file lists the chunk sizes of a fixed pseudo-random input.
func TestChunkerGolden(t *testing.T) {
	sizes := chunkSizes(t, bytes.NewReader(randomBytes(42, 4<<20)))
	var b strings.Builder
	for _, s := range sizes {
		fmt.Fprintln(&b, s)
	}
	golden := filepath.Join("testdata", "chunks-seed42-4MiB.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if b.String() != string(want) {
		t.Errorf("chunk boundaries differ from %s: the chunker changed, and with it every store", golden)
	}
}

// A one-byte change (or insertion, or deletion) in the middle of a 50 MiB
// file costs at most three new chunks.
func TestChunkerLocalEdit(t *testing.T) {
	orig := randomBytes(4, 50<<20)
	before := map[images.Digest]bool{}
	for _, id := range chunkIDs(t, orig) {
		before[id] = true
	}
	mid := len(orig) / 2
	edits := map[string][]byte{
		"change": func() []byte { b := bytes.Clone(orig); b[mid] ^= 0xff; return b }(),
		"insert": append(append(bytes.Clone(orig[:mid]), 'x'), orig[mid:]...),
		"delete": append(bytes.Clone(orig[:mid]), orig[mid+1:]...),
	}
	for name, edited := range edits {
		t.Run(name, func(t *testing.T) {
			added := 0
			for _, id := range chunkIDs(t, edited) {
				if !before[id] {
					added++
				}
			}
			if added < 1 || added > 3 {
				t.Errorf("%d new chunks, want 1 to 3", added)
			}
		})
	}
}

func BenchmarkChunker(b *testing.B) {
	data := randomBytes(6, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c := NewChunker(bytes.NewReader(data))
		for {
			if _, err := c.Next(); err == io.EOF {
				break
			}
		}
	}
}
