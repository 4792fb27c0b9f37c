package images

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is the compression of a tar stream.
type Compression int

// The compressions ingot reads and writes.
const (
	CompressNone Compression = iota // plain tar
	CompressGzip                    // gzip (RFC 1952)
	CompressZstd                    // zstd (RFC 8878)
)

func (c Compression) String() string {
	switch c {
	case CompressNone:
		return "none"
	case CompressGzip:
		return "gzip"
	case CompressZstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// Ext is the usual file name suffix of a tar with compression c.
func (c Compression) Ext() string {
	switch c {
	case CompressGzip:
		return ".tar.gz"
	case CompressZstd:
		return ".tar.zst"
	}
	return ".tar"
}

// Magic numbers at the start of a compressed stream.
var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicBzip2 = []byte{'B', 'Z', 'h'}
)

// ErrUnsupportedCompression is returned for a stream compressed in a way
// ingot does not read (xz, bzip2).
var ErrUnsupportedCompression = errors.New("images: unsupported compression")

// DetectCompression looks at the first bytes of r, without consuming them,
// and reports how the stream is compressed. Anything that is neither gzip
// nor zstd is CompressNone, except xz and bzip2, which are refused with
// ErrUnsupportedCompression rather than misread as a tar.
func DetectCompression(r *bufio.Reader) (Compression, error) {
	head, err := r.Peek(len(magicXz))
	if err != nil && !errors.Is(err, io.EOF) {
		return CompressNone, err
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return CompressGzip, nil
	case bytes.HasPrefix(head, magicZstd):
		return CompressZstd, nil
	case bytes.HasPrefix(head, magicXz):
		return CompressNone, fmt.Errorf("%w: xz (recompress with zstd or gzip)", ErrUnsupportedCompression)
	case bytes.HasPrefix(head, magicBzip2):
		return CompressNone, fmt.Errorf("%w: bzip2 (recompress with zstd or gzip)", ErrUnsupportedCompression)
	}
	return CompressNone, nil
}

// CompressionFromName guesses the compression from a file name: .tar.gz
// and .tgz are gzip, .tar.zst, .tar.zstd and .tzst are zstd, anything else
// is none.
func CompressionFromName(name string) Compression {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".gz"), strings.HasSuffix(n, ".tgz"):
		return CompressGzip
	case strings.HasSuffix(n, ".zst"), strings.HasSuffix(n, ".zstd"), strings.HasSuffix(n, ".tzst"):
		return CompressZstd
	}
	return CompressNone
}

// zstdMaxWindow bounds the memory a zstd stream may make the decoder use.
const zstdMaxWindow = 128 << 20

// NewDecompressor detects the compression of r and returns a reader of the
// decompressed bytes. Close releases the decoder; it does not close r. A
// corrupt or truncated stream shows as an error from Read.
func NewDecompressor(r io.Reader) (io.ReadCloser, Compression, error) {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < len(magicXz) {
		br = bufio.NewReaderSize(r, 1<<16)
	}
	c, err := DetectCompression(br)
	if err != nil {
		return nil, c, err
	}
	switch c {
	case CompressGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, fmt.Errorf("gzip header: %w", err)
		}
		return zr, c, nil
	case CompressZstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, c, fmt.Errorf("zstd: %w", err)
		}
		return zstdReadCloser{zr}, c, nil
	}
	return io.NopCloser(br), c, nil
}

type zstdReadCloser struct{ *zstd.Decoder }

func (z zstdReadCloser) Close() error { z.Decoder.Close(); return nil }

// zstdConcurrency is fixed, never GOMAXPROCS, so that the bytes written do
// not depend on the machine.
const zstdConcurrency = 2

// NewCompressor returns a writer that compresses into w with c. Close
// flushes the stream; it does not close w. The output depends only on the
// input: gzip has no name, no mtime and OS byte 255 ("unknown"), zstd runs
// at a fixed concurrency with a fixed level.
func NewCompressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case CompressNone:
		return nopWriteCloser{w}, nil
	case CompressGzip:
		zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
		if err != nil {
			return nil, err
		}
		zw.Header = gzip.Header{OS: 255}
		return zw, nil
	case CompressZstd:
		return zstd.NewWriter(w,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(zstdConcurrency),
			zstd.WithEncoderCRC(true))
	}
	return nil, fmt.Errorf("unknown compression %d", int(c))
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
