package deb

import (
	"fmt"
	"io"

	"github.com/ingotfleet/ingot/internal/compress"
)

// Compression is how a tar member of a .deb is compressed.
type Compression string

// The compressions dpkg-deb writes (and bzip2, which it still reads).
const (
	CompressNone  Compression = ""
	CompressGzip  Compression = ".gz"
	CompressXZ    Compression = ".xz"
	CompressZstd  Compression = ".zst"
	CompressBzip2 Compression = ".bz2"
)

// memberCompression splits "data.tar.xz" into ("data", CompressXZ).
func memberCompression(name string) (base string, c Compression, ok bool) {
	for _, c := range []Compression{CompressGzip, CompressXZ, CompressZstd, CompressBzip2, CompressNone} {
		for _, b := range []string{"control", "data"} {
			if name == b+".tar"+string(c) {
				return b, c, true
			}
		}
	}
	return "", "", false
}

// maxWindow bounds the memory a member's decompressor may take for its
// window or dictionary (dpkg-deb's xz -9 takes 64 MiB, zstd -19 8 MiB).
const maxWindow = 1 << 30

// decompress wraps r by compression c. Closing the result releases
// decoder resources (and waits for an external xz). The host's xz(1) is
// used for .xz members when it is installed, unless goXZ is set.
func decompress(r io.Reader, c Compression, goXZ bool) (io.ReadCloser, error) {
	f, ok := map[Compression]compress.Format{CompressNone: compress.None, CompressGzip: compress.Gzip,
		CompressXZ: compress.XZ, CompressZstd: compress.Zstd, CompressBzip2: compress.Bzip2}[c]
	if !ok {
		return nil, fmt.Errorf("unknown compression %q", c)
	}
	return compress.NewReader(r, f, compress.Options{MaxWindow: maxWindow, ExternalXZ: !goXZ})
}
