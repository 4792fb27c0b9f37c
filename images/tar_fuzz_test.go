package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadTar: any input is refused or gives a valid manifest that
// WriteTar writes and ReadTar reads back to the same manifest.
func FuzzReadTar(f *testing.F) {
	for _, s := range tarSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		content := map[Digest][]byte{}
		m, err := ReadTar(ctx, bytes.NewReader(data), TarOptions{Name: "fuzz"}, func(e *Entry, r io.Reader) error {
			b, err := io.ReadAll(io.LimitReader(r, 1<<20))
			content[Sum(b)] = b
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
		if err := WriteTar(ctx, &out, m, mapOpener(content)); err != nil {
			t.Fatalf("WriteTar of a manifest ReadTar made: %v", err)
		}
		m2, err := ReadTar(ctx, bytes.NewReader(out.Bytes()), TarOptions{Name: "fuzz"}, nil)
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
	m, content := goldenManifest(t)
	var own bytes.Buffer
	if err := WriteTar(context.Background(), &own, m, mapOpener(content)); err != nil {
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
		"own-gzip":     compress(t, own.Bytes(), CompressGzip),
		"own-zstd":     compress(t, own.Bytes(), CompressZstd),
		"gnu":          gnu,
		"ustar":        ustar,
		"pax-xattrs":   pax,
		"symlink-then": buildTar(t, tar.FormatPAX, symlink("a", "/"), file("a/x", "")),
		"dotdot":       buildTar(t, tar.FormatPAX, file("../x", "")),
		"hardlink-fwd": buildTar(t, tar.FormatPAX, hardlink("a", "b"), file("b", "")),
		"truncated":    gnu[:len(gnu)-1024],
	}
}

// manifestSeeds extend FuzzParseManifest's corpus with manifests of
// every kind of entry and with near misses.
func manifestSeeds(t testing.TB) map[string][]byte {
	g, _ := goldenManifest(t)
	var mtree bytes.Buffer
	g.Write(&mtree, FormatMtree)
	h := ManifestHeader + "\n"
	return map[string][]byte{
		"sample":      sampleManifest(t).Bytes(),
		"golden":      g.Bytes(),
		"mtree-form":  mtree.Bytes(),
		"escapes":     []byte(h + ". type=dir mode=0755 uid=0 gid=0 time=0.000000000\n./a\\040b\\043 type=link mode=0777 uid=0 gid=0 link=\\377\\000x time=0\n"),
		"hardlink-fw": []byte(h + ". type=dir mode=0755 uid=0 gid=0 time=0\n./a type=hardlink link=./b\n./b type=file mode=0644 uid=0 gid=0 size=0 sha256digest=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 time=0\n"),
		"escape-root": []byte(h + ". type=dir mode=0755 uid=0 gid=0 time=0\n./../etc type=dir mode=0755 uid=0 gid=0 time=0\n"),
		"under-link":  []byte(h + ". type=dir mode=0755 uid=0 gid=0 time=0\n./a type=link mode=0777 uid=0 gid=0 link=/ time=0\n./a/b type=dir mode=0755 uid=0 gid=0 time=0\n"),
		"v1":          []byte("#ingot manifest v1\n. type=dir mode=0755 uid=0 gid=0 time=0\n./a-b type=dir mode=0755 uid=0 gid=0 time=0 xattr.user.a=b=AA==\n./a/c type=fifo mode=0644 uid=0 gid=0 time=0\n"),
		"xattr":       []byte(h + ". type=dir mode=0755 uid=0 gid=0 time=-1.000000000 xattr.user.x=AAEC xattr.security.capability=AQAAAgAgAAA=\n"),
	}
}

// TestFuzzSeedCorpus keeps testdata/fuzz/FuzzReadTar and the seeds this
// file adds to testdata/fuzz/FuzzParseManifest in step with tarSeeds and
// manifestSeeds; -update rewrites them.
func TestFuzzSeedCorpus(t *testing.T) {
	check := func(dir, name string, b []byte) {
		p := filepath.Join("testdata", "fuzz", dir, name)
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if *update {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != want {
			t.Errorf("%s is missing or stale (go test -update): %v", p, err)
		}
	}
	for name, b := range manifestSeeds(t) {
		check("FuzzParseManifest", name, b)
	}
	for name, b := range tarSeeds(t) {
		check("FuzzReadTar", name, b)
	}
}
