package store

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/ingotfleet/ingot/images/store/chunks"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/klauspost/compress/zstd"
)

// These benchmarks measure the compression choices behind the store
// layout on the reference Debian root (docs/BENCHMARKS.md, "Images"):
//
//	go test ./images/store -run XXX -bench 'ZstdObjects|ZstdStream|PackSmallFiles' -benchtime 1x
//
// They report bytes as metrics; run them with GOMAXPROCS=1 to compare the
// CPU of the object encoders.

// debianChunks returns every unique chunk of the regular files of the
// reference Debian root, cut as an import cuts them.
func debianChunks(b *testing.B) [][]byte {
	b.Helper()
	f, err := os.Open(testenv.DebianRootTar(b))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	seen := map[[32]byte]bool{}
	var out [][]byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			b.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		c := chunks.NewChunker(tr)
		for {
			data, err := c.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if id := sha256.Sum256(data); !seen[id] {
				seen[id] = true
				out = append(out, append([]byte(nil), data...))
			}
		}
		c.Close()
	}
}

// BenchmarkZstdObjects compresses every unique chunk alone (as Store.put
// does) with encoder settings other than the store's.
func BenchmarkZstdObjects(b *testing.B) {
	chunks := debianChunks(b)
	base := []zstd.EOption{zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true)}
	for _, c := range []struct {
		name string
		opts []zstd.EOption
	}{
		{"default", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedDefault)}},
		{"default-window256k", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithWindowSize(256 << 10)}},
		{"default-lowmem", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithLowerEncoderMem(true)}},
		{"default-window256k-lowmem", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithWindowSize(256 << 10), zstd.WithLowerEncoderMem(true)}},
		{"fastest", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			enc, err := zstd.NewWriter(nil, append(base, c.opts...)...)
			if err != nil {
				b.Fatal(err)
			}
			defer enc.Close()
			var dst []byte
			total := 0
			for b.Loop() {
				total = 0
				for _, data := range chunks {
					dst = enc.EncodeAll(data, dst[:0])
					total += len(dst)
				}
			}
			b.ReportMetric(float64(total), "bytes")
		})
	}
}

// BenchmarkZstdStream compresses the reference tar as compression.NewCompressor
// does (SpeedDefault, 2 goroutines) and with other stream settings.
func BenchmarkZstdStream(b *testing.B) {
	data, err := os.ReadFile(testenv.DebianRootTar(b))
	if err != nil {
		b.Fatal(err)
	}
	base := []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderCRC(true)}
	for _, c := range []struct {
		name string
		opts []zstd.EOption
	}{
		{"export", []zstd.EOption{zstd.WithEncoderConcurrency(2)}},
		{"lowmem", []zstd.EOption{zstd.WithEncoderConcurrency(2), zstd.WithLowerEncoderMem(true)}},
		{"window2M", []zstd.EOption{zstd.WithEncoderConcurrency(2), zstd.WithWindowSize(2 << 20)}},
		{"concurrency1", []zstd.EOption{zstd.WithEncoderConcurrency(1)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			var out countingWriter
			for b.Loop() {
				out = 0
				enc, err := zstd.NewWriter(&out, append(base, c.opts...)...)
				if err != nil {
					b.Fatal(err)
				}
				for rest := data; len(rest) > 0; {
					n := min(len(rest), 32<<10)
					if _, err := enc.Write(rest[:n]); err != nil {
						b.Fatal(err)
					}
					rest = rest[n:]
				}
				if err := enc.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out), "bytes")
		})
	}
}

type countingWriter int

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// BenchmarkPackSmallFiles estimates what carrying small files inside one
// object (compressed together) would save over one object each: the
// unique regular files under a size limit, alone and concatenated in tar
// order, at the store's level.
func BenchmarkPackSmallFiles(b *testing.B) {
	tarPath := testenv.DebianRootTar(b)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(DefaultLevel), zstd.WithEncoderConcurrency(1))
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	for _, limit := range []int64{4 << 10, 16 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("under%dKiB", limit>>10), func(b *testing.B) {
			var alone, packed, files int
			for b.Loop() {
				f, err := os.Open(tarPath)
				if err != nil {
					b.Fatal(err)
				}
				tr := tar.NewReader(f)
				seen := map[[32]byte]bool{}
				var all []byte
				alone, files = 0, 0
				for {
					h, err := tr.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					if h.Typeflag != tar.TypeReg || h.Size == 0 || h.Size >= limit {
						continue
					}
					data, err := io.ReadAll(tr)
					if err != nil {
						b.Fatal(err)
					}
					if id := sha256.Sum256(data); !seen[id] {
						seen[id] = true
						files++
						alone += len(enc.EncodeAll(data, nil))
						all = append(all, data...)
					}
				}
				f.Close()
				packed = len(enc.EncodeAll(all, nil))
			}
			b.ReportMetric(float64(files), "files")
			b.ReportMetric(float64(alone), "alone-bytes")
			b.ReportMetric(float64(packed), "packed-bytes")
		})
	}
}
