package store

import (
	"errors"

	"github.com/klauspost/compress/zstd"

	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/images/store/pack"
)

// Limits on what a store may hand back, per kind of object. A store is
// not trusted (docs/security.md): every read is bounded before anything
// is allocated in proportion to what the store claims, while the body is
// read (Backend.Get's max) and again while it is decompressed (the
// decoder's output cap). So the memory a reader needs is bounded by the
// number of reads it runs at once times these limits.
const (
	// MaxManifest bounds a manifest's bytes: about 700,000 entries of
	// 180 bytes (a Debian server image has 25,000). Reading one holds its
	// body and its bytes, so a store that lies costs at most twice this.
	MaxManifest = 128 << 20
	// MaxSignatureFile bounds a signature file (one line per signer).
	MaxSignatureFile = 64 << 10
	// maxRefFile bounds a ref file ("<64 hex digits>\n").
	maxRefFile = 128
	// maxListSize bounds a chunk list or an index read without knowing
	// the size of the file or image: enough for a file of about 56 GiB.
	maxListSize = 256 << 20
)

// compressedLimit is the most bytes zstd can take to hold n bytes
// (pack.CompressedLimit, the bound of frames and loose objects alike).
func compressedLimit(n int64) int64 { return pack.CompressedLimit(n) }

// tooLarge is the error for h, read from loc, being more than max bytes.
func tooLarge(h Handle, loc string, what string, max int64) error {
	return backend.TooLarge(h, loc, what, max)
}

// decodeBounded decompresses raw into at most limit bytes, allocated
// once: a frame that declares a larger content size is refused from its
// header, and the decoder writes no further than the capacity it is
// given (the declared size). A frame without a content size gets at most
// noSizeMax: ingot's encoder leaves the size out only below 1 KiB. So
// the memory a read takes is the compressed body and the output, each
// bounded by the limit, whatever the bytes. The decoder's window is
// allowed at least decodeFloor, the encoder's window: the library caps
// the window at the output limit, and a large object is written with an
// 8 MiB window.
func decodeBounded(raw []byte, limit int64) ([]byte, error) {
	var fh zstd.Header
	if err := fh.Decode(raw); err != nil {
		return nil, err
	}
	size := min(limit, noSizeMax)
	if fh.HasFCS {
		if fh.FrameContentSize > uint64(limit) {
			return nil, errDecodedTooLarge
		}
		size = int64(fh.FrameContentSize)
	}
	room := uint64(max(limit, decodeFloor))
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecodeAllCapLimit(true),
		zstd.WithDecoderMaxMemory(room), zstd.WithDecoderMaxWindow(room))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	out, err := dec.DecodeAll(raw, make([]byte, 0, size))
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) || int64(len(out)) > limit {
		return nil, errDecodedTooLarge
	}
	return out, err
}

// decodeFloor is the least output a decoder is allowed (8 MiB, the
// encoder's window at every level ingot uses).
const decodeFloor = 8 << 20

// noSizeMax is the most a frame that declares no content size may hold
// (pack.NoSizeMax).
const noSizeMax = pack.NoSizeMax

// errDecodedTooLarge is decodeBounded's refusal; get names it.
var errDecodedTooLarge = errors.New("decompresses to")
