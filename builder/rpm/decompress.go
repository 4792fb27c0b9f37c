package rpm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/ingotfleet/ingot/internal/compress"
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
	case "gzip", "bzip2", "xz", "lzma", "zstd":
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownCompression, comp)
	}
	zr, err := compress.NewReader(br, compress.Format(comp), compress.Options{MaxWindow: maxWindow})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRPM, err)
	}
	return zr, nil
}
