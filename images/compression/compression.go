package compression

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is the compression of a tar stream.
type Compression int

// The compressions ingot reads and writes.
const (
	None Compression = iota // plain tar
	Gzip                    // gzip (RFC 1952)
	Zstd                    // zstd (RFC 8878)
)

func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// Ext is the usual file name suffix of a tar with compression c.
func (c Compression) Ext() string {
	switch c {
	case Gzip:
		return ".tar.gz"
	case Zstd:
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
// nor zstd is None, except xz and bzip2, which are refused with
// ErrUnsupportedCompression rather than misread as a tar.
func DetectCompression(r *bufio.Reader) (Compression, error) {
	head, err := r.Peek(len(magicXz))
	if err != nil && !errors.Is(err, io.EOF) {
		return None, err
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return Gzip, nil
	case bytes.HasPrefix(head, magicZstd):
		return Zstd, nil
	case bytes.HasPrefix(head, magicXz):
		return None, fmt.Errorf("%w: xz (recompress with zstd or gzip)", ErrUnsupportedCompression)
	case bytes.HasPrefix(head, magicBzip2):
		return None, fmt.Errorf("%w: bzip2 (recompress with zstd or gzip)", ErrUnsupportedCompression)
	}
	return None, nil
}

// CompressionFromName guesses the compression from a file name: .tar.gz
// and .tgz are gzip, .tar.zst, .tar.zstd and .tzst are zstd, anything else
// is none.
func CompressionFromName(name string) Compression {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".gz"), strings.HasSuffix(n, ".tgz"):
		return Gzip
	case strings.HasSuffix(n, ".zst"), strings.HasSuffix(n, ".zstd"), strings.HasSuffix(n, ".tzst"):
		return Zstd
	}
	return None
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
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, fmt.Errorf("gzip header: %w", err)
		}
		zr.Multistream(false)
		return &gzipMembers{br: br, zr: zr}, c, nil
	case Zstd:
		zr, err := zstd.NewReader(&zstdFrames{br: br}, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, c, fmt.Errorf("zstd: %w", err)
		}
		return zstdReadCloser{zr}, c, nil
	}
	return io.NopCloser(br), c, nil
}

type zstdReadCloser struct{ *zstd.Decoder }

func (z zstdReadCloser) Close() error { z.Decoder.Close(); return nil }

// ErrTrailingGarbage is returned when a compressed stream is followed by
// bytes that are neither another member or frame nor zero padding.
var ErrTrailingGarbage = errors.New("images: trailing data after the compressed stream")

// atPadding reports, at the end of a gzip member or zstd frame, whether
// what is left of br is only zero bytes (as bsdtar pads its compressed
// output to whole records) or nothing. It returns false, consuming
// nothing, when another member or frame follows, and ErrTrailingGarbage
// for anything else.
func atPadding(br *bufio.Reader, magic []byte) (bool, error) {
	head, err := br.Peek(len(magic))
	if bytes.Equal(head, magic) {
		return false, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	for {
		b, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if b != 0 {
			return false, ErrTrailingGarbage
		}
	}
}

// gzipMembers reads every member of a gzip stream (RFC 1952 allows
// several) and accepts zero padding after the last.
type gzipMembers struct {
	br   *bufio.Reader
	zr   *gzip.Reader
	done bool
}

func (g *gzipMembers) Read(p []byte) (int, error) {
	for {
		if g.done {
			return 0, io.EOF
		}
		n, err := g.zr.Read(p)
		if err != io.EOF {
			return n, err
		}
		end, perr := atPadding(g.br, magicGzip)
		if perr != nil {
			return n, perr
		}
		if end {
			g.done = true
		} else if err := g.zr.Reset(g.br); err != nil {
			return n, err
		} else {
			g.zr.Multistream(false)
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (g *gzipMembers) Close() error { return g.zr.Close() }

// zstdFrames passes a zstd stream through frame by frame, parsing only
// the frame and block headers (RFC 8878), so that the decoder sees EOF
// where the frames end and zero padding after them is accepted.
type zstdFrames struct {
	br      *bufio.Reader
	left    int64 // bytes of the current frame still to pass through
	inFrame bool
	last    bool // the current block is the frame's last
	sum     bool // the frame ends with a 4-byte checksum
	blocks  bool // headers of blocks follow, not the frame header
	done    bool
	pending []byte // header bytes parsed but not yet passed on
}

var errZstdFrame = errors.New("zstd: corrupt frame header")

func (z *zstdFrames) Read(p []byte) (int, error) {
	for {
		if len(z.pending) > 0 {
			n := copy(p, z.pending)
			z.pending = z.pending[n:]
			return n, nil
		}
		if z.left > 0 {
			n, err := z.br.Read(p[:min(int64(len(p)), z.left)])
			z.left -= int64(n)
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		if z.done {
			return 0, io.EOF
		}
		if err := z.next(); err != nil {
			return 0, err
		}
	}
}

// next parses the next header: of a frame, a block or a checksum.
func (z *zstdFrames) next() error {
	take := func(n int) ([]byte, error) {
		b := make([]byte, n)
		if _, err := io.ReadFull(z.br, b); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		z.pending = append(z.pending, b...)
		return b, nil
	}
	switch {
	case !z.inFrame:
		if head, _ := z.br.Peek(4); len(head) == 4 && head[0]&0xf0 == 0x50 && bytes.Equal(head[1:], []byte{0x2a, 0x4d, 0x18}) {
			// A skippable frame: magic, 4-byte size, data.
			h, err := take(8)
			if err != nil {
				return err
			}
			z.left = int64(uint32(h[4]) | uint32(h[5])<<8 | uint32(h[6])<<16 | uint32(h[7])<<24)
			return nil
		}
		end, err := atPadding(z.br, magicZstd)
		if err != nil {
			return err
		}
		if end {
			z.done = true
			return nil
		}
		h, err := take(5)
		if err != nil {
			return err
		}
		fhd := h[4]
		single := fhd&0x20 != 0
		if fhd&0x08 != 0 {
			return errZstdFrame // reserved bit
		}
		n := [4]int{0, 1, 2, 4}[fhd&3] + [4]int{0, 2, 4, 8}[fhd>>6]
		if !single {
			n++ // window descriptor
		} else if fhd>>6 == 0 {
			n++ // one-byte content size
		}
		if _, err := take(n); err != nil {
			return err
		}
		z.inFrame, z.blocks, z.sum, z.last = true, true, fhd&0x04 != 0, false
	case z.blocks && !z.last:
		h, err := take(3)
		if err != nil {
			return err
		}
		bh := uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16
		z.last = bh&1 != 0
		size := int64(bh >> 3)
		switch (bh >> 1) & 3 {
		case 0, 2: // raw, compressed
			z.left = size
		case 1: // RLE: one byte
			z.left = 1
		default:
			return errZstdFrame
		}
	default: // after the last block
		if z.sum {
			if _, err := take(4); err != nil {
				return err
			}
		}
		z.inFrame, z.blocks = false, false
	}
	return nil
}

// zstdConcurrency is fixed, never GOMAXPROCS, so that the bytes written do
// not depend on the machine.
const zstdConcurrency = 2

// NewCompressor returns a writer that compresses into w with c. Close
// flushes the stream; it does not close w. The output depends only on the
// input: gzip has no name, no mtime and OS byte 255 ("unknown"), zstd runs
// at a fixed concurrency with a fixed level.
func NewCompressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case None:
		return nopWriteCloser{w}, nil
	case Gzip:
		zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
		if err != nil {
			return nil, err
		}
		// klauspost/gzip writes ModTime even when zero: give it the epoch,
		// which the format reads as "no time".
		zw.Header = gzip.Header{OS: 255, ModTime: time.Unix(0, 0)}
		return zw, nil
	case Zstd:
		return zstd.NewWriter(w,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(zstdConcurrency),
			zstd.WithEncoderCRC(true))
	}
	return nil, fmt.Errorf("unknown compression %d", int(c))
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
