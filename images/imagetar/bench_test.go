package imagetar

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/images/internal/imagetest"
)

// benchImage is the synthetic tree walked, its content in memory, and
// its tar.
type benchImage struct {
	dir     string
	bytes   int64
	m       *images.Manifest
	content map[images.Digest][]byte
	tar     []byte
}

func newBenchImage(b *testing.B) *benchImage {
	b.Helper()
	bi := &benchImage{dir: b.TempDir(), content: map[images.Digest][]byte{}}
	bi.bytes = imagetest.BenchTree(b, bi.dir)
	var err error
	bi.m, err = images.WalkDir(context.Background(), bi.dir, images.WalkOptions{}, func(e *images.Entry, r io.Reader) error {
		c, err := io.ReadAll(r)
		bi.content[images.Sum(c)] = c
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(context.Background(), &buf, bi.m, imagetest.MapOpener(bi.content)); err != nil {
		b.Fatal(err)
	}
	bi.tar = buf.Bytes()
	return bi
}

func BenchmarkReadTar(b *testing.B) {
	bi := newBenchImage(b)
	for _, c := range []compression.Compression{compression.None, compression.Zstd, compression.Gzip} {
		in := compress(b, bi.tar, c)
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(bi.tar)))
			for b.Loop() {
				if _, err := Read(context.Background(), bytes.NewReader(in), Options{}, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWriteTar(b *testing.B) {
	bi := newBenchImage(b)
	open := imagetest.MapOpener(bi.content)
	for _, c := range []compression.Compression{compression.None, compression.Zstd, compression.Gzip} {
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(bi.tar)))
			for b.Loop() {
				w, err := compression.NewCompressor(io.Discard, c)
				if err != nil {
					b.Fatal(err)
				}
				if err := Write(context.Background(), w, bi.m, open); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
