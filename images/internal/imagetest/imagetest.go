package imagetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
)

// Golden is a small image with one entry of every kind imagetar.Write
// archives, plus a socket, which it leaves out, and the content of its
// files by hash. imagetar's golden tars and FuzzParseManifest's "golden"
// seed are made from it.
func Golden(t testing.TB) (*images.Manifest, map[images.Digest][]byte) {
	t.Helper()
	content := map[images.Digest][]byte{}
	add := func(s string) (int64, images.Digest) {
		d := images.Sum([]byte(s))
		content[d] = []byte(s)
		return int64(len(s)), d
	}
	big := strings.Repeat("ingot ", 3000)
	n1, d1 := add("#!/bin/sh\necho hi\n")
	n2, d2 := add(big)
	n3, d3 := add("")
	long := "usr/share/" + strings.Repeat("long-name-", 12)
	m, err := images.NewManifest([]images.Entry{
		{Path: ".", Type: images.TypeDir, Mode: 0o755, Uname: "root", Gname: "root", Mtime: 1700000000},
		{Path: "bin", Type: images.TypeSymlink, Mode: 0o777, Link: "usr/bin", Uname: "root", Gname: "root", Mtime: 1700000000},
		{Path: "dev", Type: images.TypeDir, Mode: 0o755, Mtime: 1700000000},
		{Path: "dev/console", Type: images.TypeChar, Mode: 0o600, DevMajor: 5, DevMinor: 1, Mtime: 1700000000},
		{Path: "dev/initctl", Type: images.TypeFifo, Mode: 0o600, Mtime: 1700000000},
		{Path: "dev/log", Type: images.TypeSocket, Mode: 0o666, Mtime: 1700000000},
		{Path: "dev/sda", Type: images.TypeBlock, Mode: 0o660, GID: 6, Gname: "disk", DevMajor: 8, DevMinor: 0, Mtime: 1700000000},
		{Path: "usr", Type: images.TypeDir, Mode: 0o755, Mtime: 1700000000},
		{Path: "usr/bin", Type: images.TypeDir, Mode: 0o755, Mtime: 1700000000},
		{Path: "usr/bin/a", Type: images.TypeFile, Mode: 0o755, Size: n1, SHA256: d1, Mtime: 1700000000},
		{Path: "usr/bin/b", Type: images.TypeHardlink, Link: "usr/bin/a"},
		{Path: "usr/bin/ping", Type: images.TypeFile, Mode: 0o4755, Size: n3, SHA256: d3, Mtime: 1700000000,
			Xattrs: map[string]string{images.XattrCapability: "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}},
		{Path: "usr/share", Type: images.TypeDir, Mode: 0o755, Mtime: 1700000000},
		{Path: long, Type: images.TypeFile, Mode: 0o644, UID: 1000, GID: 1000, Uname: "a-user-name-longer-than-thirty-two-bytes", Size: n2, SHA256: d2, Mtime: -1},
		{Path: "usr/share/caf\xc3\xa9", Type: images.TypeDir, Mode: 0o1777, Mtime: 1 << 34},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, content
}

// MapOpener gives the content of each file from content, by its hash.
func MapOpener(content map[images.Digest][]byte) images.OpenFunc {
	return func(ctx context.Context, e *images.Entry) (io.ReadCloser, error) {
		b, ok := content[e.SHA256]
		if !ok {
			return nil, fmt.Errorf("no content %s", e.SHA256)
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
}

// SampleData is compressible but not trivial: text with random words.
func SampleData(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("the quick brown fox jumps over a lazy dog ingot image manifest tar zstd gzip")
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		if r.IntN(50) == 0 {
			b.WriteByte(byte(r.IntN(256)))
		}
		b.WriteByte(' ')
	}
	return b.Bytes()[:n]
}

// BenchTree writes a synthetic root to dir: 40 directories of 60 files
// each, sizes spread like a distribution's (mostly small, a few MiB-sized),
// about 40 MiB in all, plus symlinks and hardlinks.
func BenchTree(b *testing.B, dir string) int64 {
	b.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	words := SampleData(4 << 20)
	var total int64
	for d := range 40 {
		sub := filepath.Join(dir, fmt.Sprintf("usr/lib/pkg%02d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 60 {
			size := r.IntN(16 << 10)
			if f%20 == 0 {
				size = r.IntN(2 << 20)
			}
			off := r.IntN(len(words) - size)
			p := filepath.Join(sub, fmt.Sprintf("file%03d.so", f))
			if err := os.WriteFile(p, words[off:off+size], 0o644); err != nil {
				b.Fatal(err)
			}
			total += int64(size)
			if f%15 == 0 {
				if err := os.Symlink(filepath.Base(p), p+".1"); err != nil {
					b.Fatal(err)
				}
			}
			if f%30 == 0 {
				if err := os.Link(p, p+".hard"); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	return total
}

// CheckSeeds keeps testdata/fuzz/FUZZ (FUZZ the name of a fuzz test) in
// step with seeds, a seed by file name; update (-update) rewrites them.
func CheckSeeds(t *testing.T, fuzz string, seeds map[string][]byte, update bool) {
	t.Helper()
	for name, b := range seeds {
		p := filepath.Join("testdata", "fuzz", fuzz, name)
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if update {
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
}
