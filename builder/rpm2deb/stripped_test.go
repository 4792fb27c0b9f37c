package rpm2deb

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/ingotfleet/ingot/builder/rpm"
	"github.com/ingotfleet/ingot/builder/rpm/rpmtest"
)

// TestStrippedPayload converts an RPM whose payload is rewritten in rpm's
// stripped cpio form (07070X + file index, as rpm ≥ 4.12 writes packages
// with files of 4 GiB or more): since every attribute comes from the
// header, the .deb must be byte-identical to the one from the newc
// payload — hardlink set, symlinks, setuid file and all.
func TestStrippedPayload(t *testing.T) {
	in := buildRPM(t, "hello", "")
	epoch := int64(1700000000)
	opts := Options{OutDir: t.TempDir(), SourceDateEpoch: &epoch}
	want, err := Convert(context.Background(), in, opts)
	if err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	p, err := rpm.Read(f, in)
	if err != nil {
		t.Fatal(err)
	}
	index := map[string]int{}
	for i, hf := range p.Files() {
		index["."+hf.Path] = i
	}
	payload, _, err := p.Payload()
	if err != nil {
		t.Fatal(err)
	}
	var stripped bytes.Buffer
	cr := rpm.NewCpioReader(payload, nil)
	n := 0
	rpmtest.EachMember(t, cr, func(h *rpm.CpioHeader, data []byte) {
		ix, ok := index[h.Name]
		if !ok {
			t.Fatalf("payload member %q not in the header", h.Name)
		}
		stripped.Write(rpmtest.StrippedMember(ix, data))
		n++
	})
	stripped.Write(rpmtest.NewcMember("TRAILER!!!", 0, nil))
	if n < 10 {
		t.Fatalf("only %d payload members", n)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(stripped.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	// The doctored RPM: same header, the stripped payload (no payload
	// digest to check: it was the newc payload's).
	opts.OutDir = t.TempDir()
	c := &converter{opts: opts, name: in + " (stripped)", openPayload: func() (io.ReadCloser, string, error) {
		zr, err := gzip.NewReader(&gz)
		return zr, "gzip", err
	}}
	c.opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	got, err := c.convert(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if got.Items[3].From != "gzip cpio" {
		t.Errorf("payload item %+v", got.Items[3])
	}
	if !sameFile(t, want.Output, got.Output) {
		t.Errorf("the stripped payload gave other bytes than the newc one")
	}
}
