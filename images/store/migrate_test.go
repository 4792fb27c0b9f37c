package store

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/images/store/backend"
)

// packTestTar is a tar of many small files and two of several chunks.
func packTestTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	for i := range 400 {
		add(fmt.Sprintf("usr/share/doc/f%03d", i), fmt.Appendf(nil, "file %d\n%s", i, strings.Repeat("some text\n", i)))
	}
	big := make([]byte, 3*MaxChunk)
	for i := range big {
		big[i] = byte(i*7 + i/1000)
	}
	add("usr/lib/big", big)
	add("usr/lib/big2", append(big[1000:], "tail"...))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// newV1Store makes an empty store of layout v1 in dir.
func newV1Store(t *testing.T, dir string) *Store {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, backend.MarkerFile), []byte(backend.MarkerV1), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func exportOf(t *testing.T, dir string, ref string) (images.Digest, []byte) {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	d, err := s.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.Export(ctx, d, &buf, compression.Zstd); err != nil {
		t.Fatal(err)
	}
	return d, buf.Bytes()
}

func countFiles(t *testing.T, dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, e os.DirEntry, _ error) error {
		if e != nil && e.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// A v1 store migrates to v2: same digests, byte-identical exports, no
// loose chunk left, a sound store; crashes before and after the commit
// point leave stores that read and that a second run finishes.
func TestMigrate(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	v1 := filepath.Join(root, "v1")
	s := newV1Store(t, v1)
	d, err := s.Import(ctx, bytes.NewReader(packTestTar(t)), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetRef(ctx, "web:1", d); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if countFiles(t, filepath.Join(v1, "packs")) != 0 {
		t.Fatal("an import into a v1 store wrote packs")
	}
	_, want := exportOf(t, v1, "web:1")
	looseBefore := countFiles(t, filepath.Join(v1, "objects"))

	mig := filepath.Join(root, "mig")
	if err := os.CopyFS(mig, os.DirFS(v1)); err != nil {
		t.Fatal(err)
	}
	st, err := Migrate(ctx, mig, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.From != LayoutV1 || st.To != LayoutV2 || st.Packed == 0 || st.Removed != st.Packed || st.Images != 1 {
		t.Errorf("Migrate = %+v", st)
	}
	if m, _ := os.ReadFile(filepath.Join(mig, backend.MarkerFile)); string(m) != backend.MarkerV2 {
		t.Errorf("marker after migration = %q", m)
	}
	if n := countFiles(t, filepath.Join(mig, "objects")); n != 1 {
		t.Errorf("%d loose objects after migration (of %d), want 1: the manifest", n, looseBefore)
	}
	gotD, got := exportOf(t, mig, "web:1")
	if gotD != d || !bytes.Equal(got, want) {
		t.Fatalf("after migration: image %s, export of %d bytes; want %s and the %d bytes of before", gotD, len(got), d, len(want))
	}
	ms, _ := Open(mig)
	if probs, err := ms.Verify(ctx, nil); err != nil || len(probs) != 0 {
		t.Errorf("Verify after migration = %v, %v", probs, err)
	}
	ms.Close()
	packs := countFiles(t, filepath.Join(mig, "packs"))

	t.Run("crash before the commit", func(t *testing.T) {
		// A v1 store holding the packs of an interrupted migration.
		dir := filepath.Join(t.TempDir(), "s")
		if err := os.CopyFS(dir, os.DirFS(v1)); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"packs", "packindex"} {
			os.RemoveAll(filepath.Join(dir, k))
			if err := os.CopyFS(filepath.Join(dir, k), os.DirFS(filepath.Join(mig, k))); err != nil {
				t.Fatal(err)
			}
		}
		if _, got := exportOf(t, dir, "web:1"); !bytes.Equal(got, want) {
			t.Fatal("a v1 store with unused packs exports other bytes")
		}
		if _, err := Migrate(ctx, dir, nil); err != nil {
			t.Fatal(err)
		}
		if n := countFiles(t, filepath.Join(dir, "packs")); n != packs {
			t.Errorf("the second run left %d packs, want the %d of the first (reused)", n, packs)
		}
		if _, got := exportOf(t, dir, "web:1"); !bytes.Equal(got, want) {
			t.Error("export after the finished migration differs")
		}
	})
	t.Run("crash after the commit", func(t *testing.T) {
		// A v2 store whose loose copies were not removed yet.
		dir := filepath.Join(t.TempDir(), "s")
		if err := os.CopyFS(dir, os.DirFS(mig)); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(filepath.Join(dir, "objects"))
		if err := os.CopyFS(filepath.Join(dir, "objects"), os.DirFS(filepath.Join(v1, "objects"))); err != nil {
			t.Fatal(err)
		}
		if _, got := exportOf(t, dir, "web:1"); !bytes.Equal(got, want) {
			t.Fatal("a v2 store with loose copies exports other bytes")
		}
		st, err := Migrate(ctx, dir, nil)
		if err != nil || st.From != LayoutV2 || st.Removed != looseBefore-1 {
			t.Errorf("Migrate of a committed store = %+v, %v; want %d removed", st, err, looseBefore-1)
		}
		if n := countFiles(t, filepath.Join(dir, "objects")); n != 1 {
			t.Errorf("%d loose objects left", n)
		}
	})
}

// Deltas between two imported (packed) images are computed from the
// packs, and one decodes to the new content.
func TestDeltasFromPacks(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.Import(ctx, bytes.NewReader(packTestTar(t)), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tb := packTestTar(t)
	i := bytes.Index(tb, []byte("usr/lib/big2"))
	tb[i+2000] ^= 1 // a byte of usr/lib/big2
	b, err := s.Import(ctx, bytes.NewReader(tb), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.ComputeDeltas(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if st.ChunkBytes <= 0 || st.WholeBytes < st.ChunkBytes {
		t.Errorf("ComputeDeltas = %+v: want the chunk costs of the changed file", st)
	}
}
