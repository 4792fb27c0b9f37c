package rpm

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/deb"
)

// TestDecompressLimits: a stream that asks for a huge dictionary is
// refused before the decompressor allocates it.
func TestDecompressLimits(t *testing.T) {
	var xzbuf bytes.Buffer
	zw, err := deb.NewCompressor(&xzbuf, deb.CompressXZ)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write([]byte("payload")); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	good := xzbuf.Bytes()
	if rc, err := decompress(bytes.NewReader(good), "xz"); err != nil {
		t.Fatalf("good xz: %v", err)
	} else if b, err := io.ReadAll(rc); err != nil || string(b) != "payload" {
		t.Fatalf("good xz: %q %v", b, err)
	}
	i := bytes.Index(good[12:], []byte{0x21, 0x01})
	if i < 0 {
		t.Fatal("no LZMA2 filter in the block header")
	}
	huge := append([]byte(nil), good...)
	huge[12+i+2] = 40 // 4 GiB dictionary
	if _, err := decompress(bytes.NewReader(huge), "xz"); err == nil || !strings.Contains(err.Error(), "dictionary") {
		t.Errorf("huge xz dictionary: %v", err)
	}
	lz := []byte{0x5d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0}
	if _, err := decompress(bytes.NewReader(lz), "lzma"); err == nil || !strings.Contains(err.Error(), "dictionary") {
		t.Errorf("huge lzma dictionary: %v", err)
	}
	if _, err := decompress(bytes.NewReader(good), "brotli"); !errors.Is(err, ErrUnknownCompression) {
		t.Errorf("unknown compressor: %v", err)
	}
	if _, err := decompress(bytes.NewReader(good), "gzip"); !errors.Is(err, ErrUnknownCompression) {
		t.Errorf("xz bytes named gzip: %v", err)
	}
}
