package compress

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/ulikunitz/xz"
)

// TestLimits: a header asking for a dictionary over MaxWindow is refused
// before anything is allocated, the same stream under a larger limit
// reads, and a windowed format without a limit is refused.
func TestLimits(t *testing.T) {
	var b bytes.Buffer
	zw, err := xz.WriterConfig{DictCap: 8 << 20, CheckSum: xz.CRC64}.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write([]byte("payload")); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []bool{false, true} {
		if _, err := NewReader(bytes.NewReader(b.Bytes()), XZ, Options{MaxWindow: 1 << 20, ExternalXZ: ext}); !errors.Is(err, ErrLimit) {
			t.Errorf("8 MiB xz dictionary under a 1 MiB limit (external %v): err = %v", ext, err)
		}
		rc, err := NewReader(bytes.NewReader(b.Bytes()), XZ, Options{MaxWindow: 64 << 20, ExternalXZ: ext})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(rc); err != nil || string(got) != "payload" {
			t.Errorf("external %v: read %q, %v", ext, got, err)
		}
		rc.Close()
	}
	lz := []byte{0x5d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0}
	if _, err := NewReader(bytes.NewReader(lz), LZMA, Options{MaxWindow: 64 << 20}); !errors.Is(err, ErrLimit) {
		t.Errorf("4 GiB lzma dictionary: err = %v", err)
	}
	if _, err := NewReader(bytes.NewReader(b.Bytes()), Zstd, Options{}); err == nil {
		t.Error("a zstd reader without a limit was made")
	}
	if _, err := NewReader(bytes.NewReader(nil), "brotli", Options{MaxWindow: 1}); !errors.Is(err, ErrFormat) {
		t.Errorf("unknown format: err = %v", err)
	}
}
