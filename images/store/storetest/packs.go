package storetest

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/images/store/pack"
)

// testRanges: GetRange returns exactly the bytes asked for, and refuses a
// range that is not all inside the file.
func testRanges(t *testing.T, seed, b store.Backend) {
	ctx := context.Background()
	data := randomData(7, 100000)
	h := store.DigestHandle(store.KindPack, images.Sum(data))
	if err := seed.Put(ctx, h, data, true); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int64{{0, 1}, {0, 100000}, {99999, 1}, {12345, 54321}} {
		got, err := b.GetRange(ctx, h, r[0], r[1])
		if err != nil || !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
			t.Errorf("GetRange(%d, %d) = %d bytes, %v; want the file's bytes", r[0], r[1], len(got), err)
		}
	}
	for _, r := range [][2]int64{{99999, 2}, {100000, 1}, {1 << 40, 10}, {0, 0}, {-1, 5}} {
		if got, err := b.GetRange(ctx, h, r[0], r[1]); !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("GetRange(%d, %d) outside the file = %d bytes, %v; want ErrCorrupt", r[0], r[1], len(got), err)
		}
	}
	absent := store.DigestHandle(store.KindPack, images.Sum(nil))
	if _, err := b.GetRange(ctx, absent, 0, 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRange of an absent pack: err = %v, want ErrNotFound", err)
	}
}

// sampleTar is a tar of many small files and a few large ones.
func sampleTar(t *testing.T, salt string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 {
		add(fmt.Sprintf("etc/f%03d", i), fmt.Appendf(nil, "%s file %d\n%s", salt, i, strings.Repeat("config line\n", i)))
	}
	add("bin/big", randomData(11, 3*store.MaxChunk))
	add("bin/big2", append(randomData(12, 2*store.MaxChunk), salt...))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testPacks: an imported image is read back through the backend from its
// packs (range requests), byte for byte; a second image shares the packs
// of the first; damaged packs and pack indexes are refused.
func testPacks(t *testing.T, seed, b store.Backend) {
	ctx := context.Background()
	w := store.New(seed)
	v, ok := seed.(interface{ LayoutVersion() int })
	if !ok || v.LayoutVersion() != store.LayoutV2 {
		t.Fatalf("the writable backend %s does not write layout v2 (a new local store does): the suite needs a fresh store", seed.Location())
	}
	d, err := w.Import(ctx, bytes.NewReader(sampleTar(t, "a")), store.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := w.Export(ctx, d, &want, compression.None); err != nil {
		t.Fatal(err)
	}
	export := func() ([]byte, error) {
		var got bytes.Buffer
		err := store.New(b).Export(ctx, d, &got, compression.None)
		return got.Bytes(), err
	}
	if got, err := export(); err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("export through %s: %d bytes, %v; want the %d bytes of the writer's", b.Location(), len(got), err, want.Len())
	}
	countPacks := func() int {
		n := 0
		if err := seed.List(ctx, store.KindPack, func(string) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := countPacks()
	// The same files again, in a second image: nothing new to pack but
	// the two large files' changed chunks.
	if _, err := w.Import(ctx, bytes.NewReader(sampleTar(t, "a")), store.ImportOptions{Name: "again"}); err != nil {
		t.Fatal(err)
	}
	if n := countPacks(); n != before {
		t.Errorf("importing the same tar again wrote %d new packs", n-before)
	}
	testDamagedPacks(t, seed, w, d, export)
}

// testDamagedPacks damages image d's pack index, and its pack, one way
// at a time: export must fail with ErrCorrupt or ErrTooLarge.
func testDamagedPacks(t *testing.T, seed store.Backend, w *store.Store, d images.Digest, export func() ([]byte, error)) {
	ctx := context.Background()
	h := store.DigestHandle(store.KindImagePacks, d)
	idx, err := seed.Get(ctx, h, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	var packH store.Handle
	if err := seed.List(ctx, store.KindPack, func(n string) error { packH = store.Handle{Kind: store.KindPack, Name: n}; return nil }); err != nil {
		t.Fatal(err)
	}
	packData, err := seed.Get(ctx, packH, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	replace := func(h store.Handle, data []byte) {
		if err := seed.Delete(ctx, h); err != nil {
			t.Fatal(err)
		}
		if err := seed.Put(ctx, h, data, true); err != nil {
			t.Fatal(err)
		}
	}
	restore := func() {
		replace(h, idx)
		replace(packH, packData)
	}
	// entry returns a copy of the image pack index with field at off of
	// every entry set to v.
	np := int(binary.BigEndian.Uint32(idx[16:]))
	ne := int(binary.BigEndian.Uint32(idx[20:]))
	entries := func(off int, v uint64, size int) []byte {
		c := bytes.Clone(idx)
		for i := range ne {
			e := c[24+32*np+56*i+off:]
			if size == 8 {
				binary.BigEndian.PutUint64(e, v)
			} else {
				binary.BigEndian.PutUint32(e, uint32(v))
			}
		}
		return c
	}
	flipped := bytes.Clone(packData)
	for i := 100; i < len(flipped); i += 4096 {
		flipped[i] ^= 0x40
	}
	m, err := w.Manifest(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	oversized := append(bytes.Clone(idx), make([]byte, pack.IndexLimit(m)+1-int64(len(idx)))...)
	cases := []struct {
		name      string
		idx, pack []byte
	}{
		{"image pack index over its bound", oversized, nil},
		{"frame outside the pack", entries(36, 1<<31, 8), nil},
		{"huge frame length", entries(44, 1<<31, 4), nil},
		{"huge object length", entries(52, 1<<31, 4), nil},
		{"pack number out of range", entries(32, 7, 4), nil},
		{"truncated index", idx[:len(idx)-1], nil},
		{"truncated pack", nil, packData[:len(packData)/2]},
		{"flipped pack bytes", nil, flipped},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer restore()
			if tc.idx != nil {
				replace(h, tc.idx)
			}
			if tc.pack != nil {
				replace(packH, tc.pack)
			}
			got, err := export()
			if !errors.Is(err, store.ErrCorrupt) && !errors.Is(err, store.ErrTooLarge) {
				t.Fatalf("export with a damaged %s: %d bytes, err = %v; want ErrCorrupt or ErrTooLarge", tc.name, len(got), err)
			}
			if strings.Contains(tc.name, "bound") && !errors.Is(err, store.ErrTooLarge) {
				t.Fatalf("export with an %s: err = %v, want ErrTooLarge", tc.name, err)
			}
		})
	}
}
