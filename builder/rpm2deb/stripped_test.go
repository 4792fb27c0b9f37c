package rpm2deb

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
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
	defer f.Close()
	p, err := ReadRPM(f, in)
	if err != nil {
		t.Fatal(err)
	}
	index := map[string]int{}
	for i, hf := range p.files {
		index["."+hf.Path] = i
	}
	payload, _, err := p.Payload()
	if err != nil {
		t.Fatal(err)
	}
	var stripped bytes.Buffer
	cr := newCpioReader(payload, nil)
	n := 0
	eachCpioMember(t, cr, func(h *cpioHeader, data []byte) {
		ix, ok := index[h.Name]
		if !ok {
			t.Fatalf("payload member %q not in the header", h.Name)
		}
		stripped.Write(strippedMember(ix, data))
		n++
	})
	stripped.Write(newcMember("TRAILER!!!", 0, nil))
	if n < 10 {
		t.Fatalf("only %d payload members", n)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(stripped.Bytes())
	zw.Close()
	// The doctored RPM: same header, the stripped payload, no payload
	// digest (it was the newc payload's).
	p.br = bufio.NewReader(&gz)
	delete(p.hdr.Tags, tagPayloadDigest)
	p.hdr.Tags[tagPayloadCompressor].Value = []string{"gzip"}
	opts.OutDir = t.TempDir()
	c := &converter{opts: opts, name: in + " (stripped)"}
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
