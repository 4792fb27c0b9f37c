package imagetar

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
)

// With FnHashes, ReadTar takes the content hash from fn instead of hashing
// the bytes itself, and refuses a fn that does not read to the end or
// leaves without a hash.
func TestReadTarFnHashes(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{{"a", "alpha\n"}, {"b", strings.Repeat("b", 10000)}, {"empty", ""}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	ctx := context.Background()
	want, err := Read(ctx, bytes.NewReader(buf.Bytes()), Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hashing := func(e *images.Entry, r io.Reader) error {
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			return err
		}
		e.SHA256 = images.Digest(h.Sum(nil))
		return nil
	}
	got, err := Read(ctx, bytes.NewReader(buf.Bytes()), Options{FnHashes: true}, hashing)
	if err != nil || !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("FnHashes manifest:\n%s\n%v\nwant\n%s", got.Bytes(), err, want.Bytes())
	}
	for name, fn := range map[string]images.FileFunc{
		"stops early": func(e *images.Entry, r io.Reader) error {
			b := make([]byte, 3)
			io.ReadFull(r, b)
			e.SHA256 = images.Sum(b)
			return nil
		},
		"no hash": func(e *images.Entry, r io.Reader) error { _, err := io.Copy(io.Discard, r); return err },
	} {
		if _, err := Read(ctx, bytes.NewReader(buf.Bytes()), Options{FnHashes: true}, fn); err == nil || !strings.Contains(err.Error(), "without its hash") {
			t.Errorf("%s: err = %v, want a refusal", name, err)
		}
	}
}
