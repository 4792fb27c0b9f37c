package images

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// benchTree writes a synthetic root to dir: 40 directories of 60 files
// each, sizes spread like a distribution's (mostly small, a few MiB-sized),
// about 40 MiB in all, plus symlinks and hardlinks.
func benchTree(b *testing.B, dir string) int64 {
	b.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	words := sampleData(4 << 20)
	var total int64
	for d := range 40 {
		sub := filepath.Join(dir, fmt.Sprintf("usr/lib/pkg%02d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 60 {
			size := r.IntN(16 << 10)
			if f%20 == 0 {
				size = r.IntN(2 << 20)
			}
			off := r.IntN(len(words) - size)
			p := filepath.Join(sub, fmt.Sprintf("file%03d.so", f))
			if err := os.WriteFile(p, words[off:off+size], 0o644); err != nil {
				b.Fatal(err)
			}
			total += int64(size)
			if f%15 == 0 {
				if err := os.Symlink(filepath.Base(p), p+".1"); err != nil {
					b.Fatal(err)
				}
			}
			if f%30 == 0 {
				if err := os.Link(p, p+".hard"); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	return total
}

// benchImage is the synthetic tree walked, its content in memory, and
// its tar.
type benchImage struct {
	dir     string
	bytes   int64
	m       *Manifest
	content map[Digest][]byte
	tar     []byte
}

func newBenchImage(b *testing.B) *benchImage {
	b.Helper()
	bi := &benchImage{dir: b.TempDir(), content: map[Digest][]byte{}}
	bi.bytes = benchTree(b, bi.dir)
	var err error
	bi.m, err = WalkDir(context.Background(), bi.dir, WalkOptions{}, func(e *Entry, r io.Reader) error {
		c, err := io.ReadAll(r)
		bi.content[Sum(c)] = c
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteTar(context.Background(), &buf, bi.m, mapOpener(bi.content)); err != nil {
		b.Fatal(err)
	}
	bi.tar = buf.Bytes()
	return bi
}

func BenchmarkReadTar(b *testing.B) {
	bi := newBenchImage(b)
	for _, c := range []Compression{CompressNone, CompressZstd, CompressGzip} {
		in := compress(b, bi.tar, c)
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(bi.tar)))
			for b.Loop() {
				if _, err := ReadTar(context.Background(), bytes.NewReader(in), TarOptions{}, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWriteTar(b *testing.B) {
	bi := newBenchImage(b)
	open := mapOpener(bi.content)
	for _, c := range []Compression{CompressNone, CompressZstd, CompressGzip} {
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(bi.tar)))
			for b.Loop() {
				w, err := NewCompressor(io.Discard, c)
				if err != nil {
					b.Fatal(err)
				}
				if err := WriteTar(context.Background(), w, bi.m, open); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWalkDir(b *testing.B) {
	bi := newBenchImage(b)
	b.SetBytes(bi.bytes)
	for b.Loop() {
		if _, err := WalkDir(context.Background(), bi.dir, WalkOptions{}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
