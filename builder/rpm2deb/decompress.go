package rpm2deb

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// ErrUnknownCompression is wrapped when a payload's compressor is not one
// rpm2deb reads (gzip, bzip2, xz, lzma, zstd) or its bytes do not match
// the compressor the header names.
var ErrUnknownCompression = errors.New("rpm2deb: unknown payload compression")

// maxWindow bounds the memory a decompressor may take for its window or
// dictionary: xz -9 and zstd -19 use 64 MiB and 8 MiB; zstd --long up to
// 128 MiB.
const maxWindow = 256 << 20

var magics = map[string][]byte{
	"gzip":  {0x1f, 0x8b},
	"bzip2": []byte("BZh"),
	"xz":    {0xfd, '7', 'z', 'X', 'Z', 0},
	"zstd":  {0x28, 0xb5, 0x2f, 0xfd},
}

// decompress opens r, compressed with comp (RPMTAG_PAYLOADCOMPRESSOR).
// The stream's magic bytes must match comp.
func decompress(r io.Reader, comp string) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(6)
	if m, ok := magics[comp]; ok && !bytes.HasPrefix(head, m) {
		if len(head) < len(m) {
			return nil, fmt.Errorf("%w: truncated: no %s stream", ErrBadRPM, comp)
		}
		return nil, fmt.Errorf("%w: header says %s but the payload starts % x", ErrUnknownCompression, comp, head)
	}
	switch comp {
	case "gzip":
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrBadRPM, err)
		}
		return zr, nil
	case "bzip2":
		return io.NopCloser(bzip2.NewReader(br)), nil
	case "xz":
		if err := checkXZDict(br); err != nil {
			return nil, err
		}
		zr, err := xz.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: xz: %v", ErrBadRPM, err)
		}
		return io.NopCloser(zr), nil
	case "lzma":
		// The lzma header names the dictionary size, which the reader
		// allocates: refuse more than any rpm preset uses.
		if h, _ := br.Peek(5); len(h) == 5 && binary.LittleEndian.Uint32(h[1:5]) > maxWindow {
			return nil, fmt.Errorf("%w: lzma dictionary of %d bytes (at most %d)", ErrBadRPM, binary.LittleEndian.Uint32(h[1:5]), maxWindow)
		}
		zr, err := lzma.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: lzma: %v", ErrBadRPM, err)
		}
		return io.NopCloser(zr), nil
	case "zstd":
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxWindow))
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrBadRPM, err)
		}
		return zr.IOReadCloser(), nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownCompression, comp)
}

// checkXZDict reads the LZMA2 dictionary size from the first block header
// of an xz stream (the reader allocates it) and refuses more than
// maxWindow. rpm writes single-block streams; a later block of a crafted
// stream is not checked.
func checkXZDict(br *bufio.Reader) error {
	head, _ := br.Peek(12 + 1024)
	if len(head) < 13 || head[12] == 0 {
		return nil // too short, or no block: the reader reports it
	}
	hdr := head[12:]
	size := (int(hdr[0]) + 1) * 4
	if len(hdr) < size {
		return nil
	}
	hdr = hdr[1:size]
	flags := hdr[0]
	pos := 1
	varint := func() (uint64, bool) {
		var v uint64
		for i := 0; i < 9 && pos < len(hdr); i++ {
			b := hdr[pos]
			pos++
			v |= uint64(b&0x7f) << (7 * i)
			if b&0x80 == 0 {
				return v, true
			}
		}
		return 0, false
	}
	if flags&0x40 != 0 {
		if _, ok := varint(); !ok {
			return nil
		}
	}
	if flags&0x80 != 0 {
		if _, ok := varint(); !ok {
			return nil
		}
	}
	for f := 0; f <= int(flags&3); f++ {
		id, ok1 := varint()
		n, ok2 := varint()
		if !ok1 || !ok2 || pos+int(n) > len(hdr) {
			return nil
		}
		if id == 0x21 && n == 1 {
			p := hdr[pos]
			if p > 40 {
				return nil
			}
			dict := uint64(2|(p&1)) << (p/2 + 11)
			if dict > maxWindow {
				return fmt.Errorf("%w: xz dictionary of %d bytes (at most %d)", ErrBadRPM, dict, maxWindow)
			}
		}
		pos += int(n)
	}
	return nil
}
