package images

import (
	"bufio"
	"io"

	"github.com/ingotfleet/ingot/images/compression"
)

// The compression of image tars, from package compression under the
// names the images API has always used.

// Compression is the compression of a tar stream.
type Compression = compression.Compression

// The compressions ingot reads and writes.
const (
	CompressNone = compression.None // plain tar
	CompressGzip = compression.Gzip // gzip (RFC 1952)
	CompressZstd = compression.Zstd // zstd (RFC 8878)
)

var (
	// ErrUnsupportedCompression is compression.ErrUnsupportedCompression.
	ErrUnsupportedCompression = compression.ErrUnsupportedCompression
	// ErrTrailingGarbage is compression.ErrTrailingGarbage.
	ErrTrailingGarbage = compression.ErrTrailingGarbage
)

// DetectCompression reports how the stream r is compressed, without
// consuming it (compression.DetectCompression).
func DetectCompression(r *bufio.Reader) (Compression, error) {
	return compression.DetectCompression(r)
}

// CompressionFromName guesses the compression from a file name
// (compression.CompressionFromName).
func CompressionFromName(name string) Compression { return compression.CompressionFromName(name) }

// NewDecompressor reads the compressed stream r, whatever its compression
// (compression.NewDecompressor).
func NewDecompressor(r io.Reader) (io.ReadCloser, Compression, error) {
	return compression.NewDecompressor(r)
}

// NewCompressor compresses to w with c (compression.NewCompressor).
func NewCompressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	return compression.NewCompressor(w, c)
}
