// Package storetest is the conformance suite every store Backend passes.
//
// A backend under test may be read-only (HTTP): the suite then writes
// through a second, writable backend that shares its files (the local
// directory an HTTP server serves), and reads through the one under test.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
)

// Setup returns a fresh, empty store as two backends: seed, through which
// the suite writes, and b, the backend under test, which sees what seed
// wrote. For a writable backend both are the same value.
type Setup func(t *testing.T) (seed, b store.Backend)

// Run runs the whole suite.
func Run(t *testing.T, setup Setup) {
	tests := []struct {
		name string
		fn   func(t *testing.T, seed, b store.Backend)
	}{
		{"GetPutHas", testGetPutHas},
		{"NotFound", testNotFound},
		{"InvalidNames", testInvalidNames},
		{"ReadOnlyOrWritable", testReadOnly},
		{"List", testList},
		{"Canceled", testCanceled},
		{"Files", testFiles},
		{"ImagesAndRefs", testImagesAndRefs},
		{"CorruptObject", testCorruptObject},
		{"CorruptList", testCorruptList},
		{"Signatures", testSignatures},
		{"Deltas", testDeltas},
		{"Ranges", testRanges},
		{"Packs", testPacks},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seed, b := setup(t)
			tc.fn(t, seed, b)
		})
	}
}

func hexOf(b []byte) string { return images.Sum(b).String() }

func testGetPutHas(t *testing.T, seed, b store.Backend) {
	ctx := context.Background()
	cases := []store.Handle{
		{Kind: store.KindObject, Name: hexOf([]byte("o"))},
		{Kind: store.KindList, Name: hexOf([]byte("l"))},
		{Kind: store.KindImage, Name: hexOf([]byte("i"))},
		{Kind: store.KindRef, Name: "web/v1"},
		{Kind: store.KindSignature, Name: hexOf([]byte("s"))},
		{Kind: store.KindDelta, Name: hexOf([]byte("d1")) + "/" + hexOf([]byte("d2"))},
	}
	for _, h := range cases {
		data := []byte("content of " + h.Path())
		if err := seed.Put(ctx, h, data, true); err != nil {
			t.Fatalf("Put %s: %v", h, err)
		}
		got, err := b.Get(ctx, h, 1<<20)
		if err != nil {
			t.Fatalf("Get %s: %v", h, err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("Get %s = %q, want %q", h, got, data)
		}
		// A file longer than the reader's limit is refused, naming it.
		if got, err := b.Get(ctx, h, int64(len(data)-1)); !errors.Is(err, store.ErrTooLarge) || !strings.Contains(err.Error(), h.Kind.String()) {
			t.Errorf("Get %s with a limit of %d bytes = %d bytes, %v; want ErrTooLarge naming %s", h, len(data)-1, len(got), err, h.Kind)
		}
		if _, err := b.Get(ctx, h, int64(len(data))); err != nil {
			t.Errorf("Get %s with a limit of its length: %v", h, err)
		}
		ok, err := b.Has(ctx, h)
		if err != nil || !ok {
			t.Errorf("Has %s = %v, %v; want true", h, ok, err)
		}
	}
	// Refs are replaced; content-addressed files are kept as they are.
	ref := cases[3]
	if err := seed.Put(ctx, ref, []byte("second"), true); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Get(ctx, ref, 1<<20); string(got) != "second" {
		t.Errorf("ref after second Put = %q, want %q", got, "second")
	}
	obj := cases[0]
	if err := seed.Put(ctx, obj, []byte("content of "+obj.Path()), true); err != nil {
		t.Errorf("second Put of the same object: %v", err)
	}
	if err := seed.Sync(ctx); err != nil {
		t.Errorf("Sync: %v", err)
	}
	if err := seed.Delete(ctx, ref); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if ok, err := b.Has(ctx, ref); ok || err != nil {
		t.Errorf("Has after Delete = %v, %v; want false, nil", ok, err)
	}
	if err := seed.Delete(ctx, ref); err != nil {
		t.Errorf("Delete of an absent file: %v", err)
	}
}

func testNotFound(t *testing.T, _, b store.Backend) {
	ctx := context.Background()
	for _, k := range store.Kinds {
		h := store.Handle{Kind: k, Name: hexOf([]byte("absent"))}
		switch k {
		case store.KindRef:
			h.Name = "absent/tag"
		case store.KindDelta:
			h.Name += "/" + h.Name
		}
		_, err := b.Get(ctx, h, 1<<20)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get %s: err = %v, want ErrNotFound", h, err)
		}
		if ok, err := b.Has(ctx, h); ok || err != nil {
			t.Errorf("Has %s = %v, %v; want false, nil", h, ok, err)
		}
	}
}

func testInvalidNames(t *testing.T, seed, b store.Backend) {
	ctx := context.Background()
	bad := []store.Handle{
		{Kind: store.KindObject, Name: "../../etc/passwd"},
		{Kind: store.KindObject, Name: strings.ToUpper(hexOf(nil))},
		{Kind: store.KindObject, Name: hexOf(nil)[:10]},
		{Kind: store.KindRef, Name: "../x"},
		{Kind: store.KindRef, Name: "a/../../b"},
		{Kind: store.KindRef, Name: "name"},
		{Kind: store.KindRef, Name: "a/b/c"},
		{Kind: 0, Name: hexOf(nil)},
	}
	for _, h := range bad {
		if _, err := b.Get(ctx, h, 1<<20); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Get %+v: err = %v, want ErrInvalidName", h, err)
		}
		if err := seed.Put(ctx, h, []byte("x"), false); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Put %+v: err = %v, want ErrInvalidName", h, err)
		}
	}
}

func testReadOnly(t *testing.T, seed, b store.Backend) {
	if seed == b {
		return // writable: covered by the other tests
	}
	ctx := context.Background()
	h := store.Handle{Kind: store.KindRef, Name: "web/v1"}
	if err := b.Put(ctx, h, []byte("x"), true); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("Put on read-only backend: err = %v, want ErrReadOnly", err)
	}
	if err := b.Delete(ctx, h); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("Delete on read-only backend: err = %v, want ErrReadOnly", err)
	}
}

func testList(t *testing.T, seed, b store.Backend) {
	ctx := context.Background()
	want := map[store.Kind][]string{}
	for i := range 5 {
		for _, k := range store.Kinds {
			name := hexOf(fmt.Appendf(nil, "%d %s", i, k))
			switch k {
			case store.KindRef:
				name = fmt.Sprintf("img%d/t%d", i%2, i)
			case store.KindDelta:
				name = hexOf(fmt.Appendf(nil, "from %d", i%2)) + "/" + name
			}
			if err := seed.Put(ctx, store.Handle{Kind: k, Name: name}, []byte("x"), false); err != nil {
				t.Fatal(err)
			}
			want[k] = append(want[k], name)
		}
	}
	for _, k := range store.Kinds {
		var got []string
		err := b.List(ctx, k, func(n string) error { got = append(got, n); return nil })
		if errors.Is(err, store.ErrNotSupported) {
			continue
		}
		if err != nil {
			t.Fatalf("List %s: %v", k, err)
		}
		slices.Sort(got)
		slices.Sort(want[k])
		if !slices.Equal(got, want[k]) {
			t.Errorf("List %s = %q, want %q", k, got, want[k])
		}
	}
}

func testCanceled(t *testing.T, seed, b store.Backend) {
	h := store.Handle{Kind: store.KindObject, Name: hexOf([]byte("c"))}
	if err := seed.Put(context.Background(), h, []byte("c"), false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := store.New(b)
	if _, err := s.Manifest(ctx, images.Sum([]byte("c"))); err == nil {
		t.Errorf("Manifest with a canceled context succeeded")
	}
}

// randomData is deterministic pseudo-random bytes.
func randomData(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func testFiles(t *testing.T, seed, b store.Backend) {
	ctx := context.Background()
	w, r := store.New(seed), store.New(b)
	contents := map[string][]byte{
		"empty":  nil,
		"small":  []byte("hello\n"),
		"one":    randomData(1, store.MinChunk-1),
		"many":   randomData(2, 3*store.MaxChunk+123),
		"zeroes": make([]byte, 2*store.MaxChunk),
	}
	for name, data := range contents {
		sha, size, err := w.PutFile(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("PutFile %s: %v", name, err)
		}
		if sha != images.Sum(data) || size != int64(len(data)) {
			t.Errorf("PutFile %s = %s, %d; want %s, %d", name, sha, size, images.Sum(data), len(data))
		}
		rc, err := r.OpenFile(ctx, sha)
		if err != nil {
			t.Fatalf("OpenFile %s: %v", name, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("OpenFile %s: %d bytes, err %v; want the %d bytes put", name, len(got), err, len(data))
		}
		chunks, err := r.FileChunks(ctx, sha)
		if err != nil {
			t.Fatalf("FileChunks %s: %v", name, err)
		}
		var joined []byte
		for _, c := range chunks {
			cb, err := r.GetChunk(ctx, c.ID)
			if err != nil {
				t.Fatalf("GetChunk %s of %s: %v", c.ID, name, err)
			}
			if int64(len(cb)) != c.Size {
				t.Errorf("chunk %s of %s: %d bytes, list says %d", c.ID, name, len(cb), c.Size)
			}
			joined = append(joined, cb...)
		}
		if !bytes.Equal(joined, data) {
			t.Errorf("FileChunks %s: chunks join to %d bytes, not the content", name, len(joined))
		}
		if ok, err := r.HasContent(ctx, sha); !ok || err != nil {
			t.Errorf("HasContent %s = %v, %v", name, ok, err)
		}
	}
	if _, err := r.OpenFile(ctx, images.Sum([]byte("never stored"))); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("OpenFile of absent content: err = %v, want ErrNotFound", err)
	}
}

// sampleManifest is a small image whose files are put through w.
func sampleManifest(t *testing.T, w *store.Store, salt string) *images.Manifest {
	t.Helper()
	ctx := context.Background()
	put := func(data []byte) (images.Digest, int64) {
		sha, size, err := w.PutFile(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return sha, size
	}
	bigSHA, bigSize := put(randomData(7, 2*store.MaxChunk))
	smallSHA, smallSize := put([]byte("salt " + salt))
	m, err := images.NewManifest([]images.Entry{
		{Path: ".", Type: images.TypeDir, Mode: 0o755},
		{Path: "bin", Type: images.TypeDir, Mode: 0o755},
		{Path: "bin/big", Type: images.TypeFile, Mode: 0o755, Size: bigSize, SHA256: bigSHA},
		{Path: "bin/big2", Type: images.TypeHardlink, Link: "bin/big"},
		{Path: "etc", Type: images.TypeDir, Mode: 0o755},
		{Path: "etc/salt", Type: images.TypeFile, Mode: 0o644, Size: smallSize, SHA256: smallSHA},
		{Path: "etc/empty", Type: images.TypeFile, Mode: 0o600, SHA256: images.Sum(nil)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testImagesAndRefs(t *testing.T, seed, b store.Backend) {
	ctx := context.Background()
	w, r := store.New(seed), store.New(b)
	m := sampleManifest(t, w, "a")
	d, err := w.PutManifest(ctx, m)
	if err != nil {
		t.Fatalf("PutManifest: %v", err)
	}
	if d != m.Digest() {
		t.Errorf("PutManifest = %s, want the manifest digest %s", d, m.Digest())
	}
	got, err := r.Manifest(ctx, d)
	if err != nil {
		t.Fatalf("Manifest: %v", err)
	}
	if !bytes.Equal(got.Bytes(), m.Bytes()) {
		t.Errorf("Manifest read back differs")
	}
	ix, err := r.Index(ctx, d)
	if err != nil {
		t.Fatalf("Index: %v", err)
	}
	big := m.Lookup("bin/big")
	if n := len(ix.Chunks(big.SHA256, big.Size)); n < 2 {
		t.Errorf("index lists %d chunks for bin/big, want ≥ 2", n)
	}
	if len(ix) != 1 {
		t.Errorf("index lists %d files, want 1 (only bin/big has several chunks)", len(ix))
	}
	if err := w.SetRef(ctx, "web:v1", d); err != nil {
		t.Fatalf("SetRef: %v", err)
	}
	for _, ref := range []string{"web:v1", d.String(), "sha256:" + d.String()} {
		got, err := r.Resolve(ctx, ref)
		if err != nil || got != d {
			t.Errorf("Resolve %q = %s, %v; want %s", ref, got, err, d)
		}
	}
	if _, err := r.Resolve(ctx, "web:v2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Resolve of an absent ref: err = %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"Web:v1", "web", ":v1", "web:", "../x:y", "web:v1/../x"} {
		if _, err := r.Resolve(ctx, bad); err == nil {
			t.Errorf("Resolve %q succeeded, want an error", bad)
		}
	}
	if err := w.SetRef(ctx, "web:v9", images.Sum([]byte("no such image"))); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetRef to an absent image: err = %v, want ErrNotFound", err)
	}
	// Missing content: a manifest naming a file that is not stored is refused.
	bad := sampleManifest(t, w, "b")
	bad.Lookup("etc/salt").SHA256 = images.Sum([]byte("not stored"))
	if _, err := w.PutManifest(ctx, bad); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PutManifest with absent content: err = %v, want ErrNotFound", err)
	}
	// Prefixes and the image list, where the backend can list.
	list, err := r.Images(ctx)
	if errors.Is(err, store.ErrNotSupported) {
		return
	}
	if err != nil {
		t.Fatalf("Images: %v", err)
	}
	if len(list) != 1 || list[0].Digest != d || !slices.Equal(list[0].Refs, []string{"web:v1"}) {
		t.Errorf("Images = %+v, want [%s web:v1]", list, d)
	}
	if got, err := r.Resolve(ctx, d.String()[:8]); err != nil || got != d {
		t.Errorf("Resolve prefix = %s, %v", got, err)
	}
}

func testCorruptObject(t *testing.T, seed, b store.Backend) {
	ctx := context.Background()
	w, r := store.New(seed), store.New(b)
	good := randomData(3, 1000)
	sha, _, err := w.PutFile(ctx, bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	h := store.DigestHandle(store.KindObject, sha)
	raw, err := seed.Get(ctx, h, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := seed.Delete(ctx, h); err != nil {
		t.Fatal(err)
	}
	// Another object's valid bytes under this name.
	other := store.New(seed)
	otherSHA, _, err := other.PutFile(ctx, bytes.NewReader(randomData(4, 1000)))
	if err != nil {
		t.Fatal(err)
	}
	otherRaw, err := seed.Get(ctx, store.DigestHandle(store.KindObject, otherSHA), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(raw)
	flipped[len(flipped)/2] ^= 0x40
	for name, data := range map[string][]byte{"flipped": flipped, "truncated": raw[:len(raw)/2], "swapped": otherRaw, "garbage": []byte("not zstd")} {
		t.Run(name, func(t *testing.T) {
			if err := seed.Delete(ctx, h); err != nil {
				t.Fatal(err)
			}
			if err := seed.Put(ctx, h, data, false); err != nil {
				t.Fatal(err)
			}
			_, err := r.GetChunk(ctx, sha)
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("GetChunk of corrupt object: err = %v, want ErrCorrupt", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, sha.String()) || !strings.Contains(msg, b.Location()) {
				t.Errorf("error %q names neither the object %s nor the source %s", msg, sha, b.Location())
			}
			rc, err := r.OpenFile(ctx, sha)
			if err == nil {
				_, err = io.ReadAll(rc)
			}
			if !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("OpenFile+Read of corrupt content: err = %v, want ErrCorrupt", err)
			}
		})
	}
}

func testCorruptList(t *testing.T, seed, b store.Backend) {
	ctx := context.Background()
	w, r := store.New(seed), store.New(b)
	data := randomData(5, 3*store.MaxChunk)
	sha, _, err := w.PutFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := r.FileChunks(ctx, sha)
	if err != nil || len(chunks) < 3 {
		t.Fatalf("FileChunks = %d chunks, %v", len(chunks), err)
	}
	// A list whose chunks are all valid but in the wrong order: every chunk
	// verifies, the file does not.
	chunks[0], chunks[1] = chunks[1], chunks[0]
	var text []byte
	for _, c := range chunks {
		text = fmt.Appendf(text, "%s %d\n", c.ID, c.Size)
	}
	h := store.DigestHandle(store.KindList, sha)
	if err := seed.Delete(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := store.New(seed).PutRaw(ctx, h, text); err != nil {
		t.Fatal(err)
	}
	rc, err := r.OpenFile(ctx, sha)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), sha.String()) {
		t.Errorf("reading a file through a reordered list: err = %v, want ErrCorrupt naming %s", err, sha)
	}
}
