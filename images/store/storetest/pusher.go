package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/images/store/delta"
)

// What the pusher reads besides images: signature files and deltas.

func testSignatures(t *testing.T, seed, b store.Backend) {
	ctx := context.Background()
	w, r := store.New(seed), store.New(b)
	d, err := w.PutManifest(ctx, sampleManifest(t, w, "sig"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Signature(ctx, d); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Signature of an unsigned image: err = %v, want ErrNotFound", err)
	}
	for _, sig := range []string{"first signer\n", "first signer\nsecond signer\n"} {
		if err := w.PutSignature(ctx, d, []byte(sig)); err != nil {
			t.Fatalf("PutSignature: %v", err)
		}
		got, err := r.Signature(ctx, d)
		if err != nil || string(got) != sig {
			t.Fatalf("Signature = %q, %v; want %q (signature files are replaced)", got, err, sig)
		}
	}
	absent := images.Sum([]byte("no such image"))
	if err := w.PutSignature(ctx, absent, []byte("x\n")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PutSignature of an image not in the store: err = %v, want ErrNotFound", err)
	}
	if err := w.PutSignature(ctx, d, make([]byte, 1<<20)); err == nil {
		t.Errorf("PutSignature of 1 MiB succeeded")
	}
	got, err := r.ManifestBytes(ctx, d)
	if err != nil || images.Sum(got) != d {
		t.Errorf("ManifestBytes: %d bytes, %v; want bytes hashing to the digest", len(got), err)
	}
}

// editedCopy is data with a few bytes changed in a few places and a
// piece inserted: what a package upgrade does to a library.
func editedCopy(data []byte) []byte {
	out := bytes.Clone(data)
	for _, at := range []int{len(out) / 7, len(out) / 2, len(out) - 100} {
		copy(out[at:], "patched!")
	}
	mid := len(out) / 3
	return append(out[:mid:mid], append([]byte("an inserted piece of text"), out[mid:]...)...)
}

func testDeltas(t *testing.T, seed, b store.Backend) {
	ctx := context.Background()
	w, r := store.New(seed), store.New(b)
	put := func(data []byte) images.Digest {
		sha, _, err := w.PutFile(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return sha
	}
	image := func(files map[string][]byte) images.Digest {
		entries := []images.Entry{{Path: ".", Type: images.TypeDir, Mode: 0o755}}
		for _, p := range []string{"lib", "small", "same", "new"} {
			if data, ok := files[p]; ok {
				entries = append(entries, images.Entry{Path: p, Type: images.TypeFile, Mode: 0o644, Size: int64(len(data)), SHA256: put(data)})
			}
		}
		m, err := images.NewManifest(entries)
		if err != nil {
			t.Fatal(err)
		}
		d, err := w.PutManifest(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	oldLib := randomData(11, 5*store.MaxChunk/2)
	newLib := editedCopy(oldLib)
	same := []byte("unchanged")
	da := image(map[string][]byte{"lib": oldLib, "small": []byte("v1"), "same": same})
	db := image(map[string][]byte{"lib": newLib, "small": []byte("v2"), "same": same, "new": []byte("only in B")})

	st, err := w.ComputeDeltas(ctx, da, db)
	if err != nil {
		t.Fatalf("ComputeDeltas: %v", err)
	}
	// lib and small changed; only lib's delta beats its missing chunks.
	if st.Files != 2 || st.Deltas != 1 || st.DeltaBytes >= st.ChunkBytes || st.ChunkBytes > st.WholeBytes {
		t.Fatalf("ComputeDeltas = %+v; want 2 files, 1 delta smaller than the chunks", st)
	}
	if st.DeltaBytes > 4096 {
		t.Errorf("a delta for 4 small edits is %d bytes", st.DeltaBytes)
	}
	again, err := w.ComputeDeltas(ctx, da, db)
	if err != nil || again != st {
		t.Errorf("ComputeDeltas again = %+v, %v; want %+v", again, err, st)
	}

	from, to := images.Sum(oldLib), images.Sum(newLib)
	got, err := r.Delta(ctx, from, to, oldLib, int64(len(newLib)))
	if err != nil || !bytes.Equal(got, newLib) {
		t.Fatalf("Delta: %d bytes, %v; want the new content", len(got), err)
	}
	if ok, err := r.HasDelta(ctx, from, to); !ok || err != nil {
		t.Errorf("HasDelta = %v, %v", ok, err)
	}
	if _, err := r.Delta(ctx, from, to, newLib, int64(len(newLib))); err == nil {
		t.Errorf("Delta with the wrong old content succeeded")
	}
	if _, err := r.Delta(ctx, images.Sum([]byte("v1")), images.Sum([]byte("v2")), []byte("v1"), 2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delta not stored: err = %v, want ErrNotFound", err)
	}
	// A delta that does not rebuild its name is refused, never returned.
	other := randomData(12, 1000)
	forged, err := delta.Encode(oldLib, other, store.DefaultLevel)
	if err != nil {
		t.Fatal(err)
	}
	fake := images.Sum([]byte("claimed new content"))
	if err := seed.Put(ctx, store.DeltaHandle(from, fake), forged, true); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Delta(ctx, from, fake, oldLib, int64(len(other))); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("forged delta: err = %v, want ErrCorrupt", err)
	}
	// A delta that decodes to more than its content's size is stopped.
	if _, err := r.Delta(ctx, from, fake, oldLib, int64(len(other))-1); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("delta longer than its content: err = %v, want ErrTooLarge", err)
	}
	if err := seed.Put(ctx, store.DeltaHandle(from, images.Sum([]byte("garbage"))), []byte("not zstd"), true); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Delta(ctx, from, images.Sum([]byte("garbage")), oldLib, 100); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("garbage delta: err = %v, want ErrCorrupt", err)
	}
}
