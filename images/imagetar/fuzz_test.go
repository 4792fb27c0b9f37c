package imagetar

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/images/internal/imagetest"
)

// FuzzReadTar: any input is refused or gives a valid manifest that
// WriteTar writes and ReadTar reads back to the same manifest.
func FuzzReadTar(f *testing.F) {
	for _, s := range tarSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		content := map[images.Digest][]byte{}
		m, err := Read(ctx, bytes.NewReader(data), Options{Name: "fuzz"}, func(e *images.Entry, r io.Reader) error {
			b, err := io.ReadAll(io.LimitReader(r, 1<<20))
			content[images.Sum(b)] = b
			return err
		})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "tar fuzz") {
				t.Fatalf("error does not name the input: %v", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("ReadTar returned an invalid manifest: %v", err)
		}
		var out bytes.Buffer
		if err := Write(ctx, &out, m, imagetest.MapOpener(content)); err != nil {
			t.Fatalf("WriteTar of a manifest ReadTar made: %v", err)
		}
		m2, err := Read(ctx, bytes.NewReader(out.Bytes()), Options{Name: "fuzz"}, nil)
		if err != nil {
			t.Fatalf("reading back: %v", err)
		}
		// Sockets cannot be in a tar, so the manifests must be equal.
		if !bytes.Equal(m.Bytes(), m2.Bytes()) {
			t.Fatalf("round trip changed the manifest:\n%s\n---\n%s", m.Bytes(), m2.Bytes())
		}
	})
}

// tarSeeds are small archives of every kind ReadTar meets.
func tarSeeds(t testing.TB) map[string][]byte {
	m, content := imagetest.Golden(t)
	var own bytes.Buffer
	if err := Write(context.Background(), &own, m, imagetest.MapOpener(content)); err != nil {
		t.Fatal(err)
	}
	gnu := buildTar(t, tar.FormatGNU, dir("./"), dir("etc"), file("etc/passwd", "root:x:0:0::/:/bin/sh\n"),
		file("etc/"+strings.Repeat("n", 120), "long"), hardlink("x", "etc/passwd"), symlink("l", "etc"),
		te{name: "null", typ: tar.TypeChar, mode: 0o666}, te{name: "fifo", typ: tar.TypeFifo})
	ustar := buildTar(t, tar.FormatUSTAR, file("a/b/c", "abc"), dir("a/"))
	pax := buildTar(t, tar.FormatPAX, te{name: "f", typ: tar.TypeReg, body: "x", pax: map[string]string{
		"SCHILY.xattr.user.a": "1", "LIBARCHIVE.xattr.user.b": "Mg"}})
	return map[string][]byte{
		"own":          own.Bytes(),
		"own-gzip":     compress(t, own.Bytes(), compression.Gzip),
		"own-zstd":     compress(t, own.Bytes(), compression.Zstd),
		"gnu":          gnu,
		"ustar":        ustar,
		"pax-xattrs":   pax,
		"symlink-then": buildTar(t, tar.FormatPAX, symlink("a", "/"), file("a/x", "")),
		"dotdot":       buildTar(t, tar.FormatPAX, file("../x", "")),
		"hardlink-fwd": buildTar(t, tar.FormatPAX, hardlink("a", "b"), file("b", "")),
		"truncated":    gnu[:len(gnu)-1024],
	}
}

// TestFuzzSeedCorpus keeps testdata/fuzz/FuzzReadTar in step with
// tarSeeds; -update rewrites it.
func TestFuzzSeedCorpus(t *testing.T) {
	imagetest.CheckSeeds(t, "FuzzReadTar", tarSeeds(t), *update)
}
