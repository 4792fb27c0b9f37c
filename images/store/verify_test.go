package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/images/store/chunks"
)

// testImage stores a small image (a multi-chunk file, a small file, an
// empty one) and returns the store, its directory and the image digest.
func testImage(t *testing.T) (*Store, string, images.Digest, *images.Manifest) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	big := randomBytes(9, 3*MaxChunk)
	bigSHA, _, err := s.PutFile(ctx, bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	smallSHA, _, err := s.PutFile(ctx, strings.NewReader("small\n"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := images.NewManifest([]images.Entry{
		{Path: ".", Type: images.TypeDir, Mode: 0o755},
		{Path: "big", Type: images.TypeFile, Mode: 0o644, Size: int64(len(big)), SHA256: bigSHA},
		{Path: "empty", Type: images.TypeFile, Mode: 0o644, SHA256: emptySHA},
		{Path: "small", Type: images.TypeFile, Mode: 0o644, Size: 6, SHA256: smallSHA},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.PutManifest(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetRef(ctx, "test:v1", d); err != nil {
		t.Fatal(err)
	}
	return s, dir, d, m
}

func TestVerifyClean(t *testing.T) {
	s, _, d, _ := testImage(t)
	var last Progress
	probs, err := s.Verify(context.Background(), func(p Progress) { last = p })
	if err != nil || len(probs) != 0 {
		t.Fatalf("Verify = %v, %v; want no problems", probs, err)
	}
	if last.Phase != "refs" || last.Done != 1 || last.Total != 1 {
		t.Errorf("last progress %+v, want refs 1/1", last)
	}
	probs, err = s.VerifyImage(context.Background(), d, nil)
	if err != nil || len(probs) != 0 {
		t.Fatalf("VerifyImage = %v, %v; want no problems", probs, err)
	}
}

// Damage on disk is found and named, by both the whole-store and the
// image check.
func TestVerifyFindsDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, s *Store, dir string, d images.Digest, m *images.Manifest)
		want   string // in some problem's text
	}{
		{"flipped chunk", func(t *testing.T, s *Store, dir string, d images.Digest, m *images.Manifest) {
			p := filepath.Join(dir, DigestHandle(KindObject, m.Lookup("small").SHA256).Path())
			b, _ := os.ReadFile(p)
			b[len(b)-2] ^= 1
			os.WriteFile(p, b, 0o644)
		}, "does not match its name"},
		{"missing chunk", func(t *testing.T, s *Store, dir string, d images.Digest, m *images.Manifest) {
			ix, _ := s.Index(context.Background(), d)
			c := ix[m.Lookup("big").SHA256][1]
			os.Remove(filepath.Join(dir, DigestHandle(KindObject, c.ID).Path()))
		}, "not found"},
		{"index size", func(t *testing.T, s *Store, dir string, d images.Digest, m *images.Manifest) {
			ix, _ := s.Index(context.Background(), d)
			big := m.Lookup("big").SHA256
			ix[big] = ix[big][:2]
			os.Remove(filepath.Join(dir, DigestHandle(KindImage, d).Path()))
			s.PutRaw(context.Background(), DigestHandle(KindImage, d), chunks.FormatIndex(ix))
		}, "bytes of chunks"},
		{"manifest", func(t *testing.T, s *Store, dir string, d images.Digest, m *images.Manifest) {
			p := filepath.Join(dir, DigestHandle(KindObject, d).Path())
			os.Remove(p)
			s.PutRaw(context.Background(), DigestHandle(KindObject, d), append(m.Bytes(), "x\n"...))
		}, "bytes hash to"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, dir, d, m := testImage(t)
			tc.damage(t, s, dir, d, m)
			for name, verify := range map[string]func() ([]Problem, error){
				"Verify":      func() ([]Problem, error) { return s.Verify(context.Background(), nil) },
				"VerifyImage": func() ([]Problem, error) { return s.VerifyImage(context.Background(), d, nil) },
			} {
				probs, err := verify()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				var text []string
				for _, p := range probs {
					text = append(text, p.String())
				}
				if !strings.Contains(strings.Join(text, "\n"), tc.want) {
					t.Errorf("%s problems %q do not mention %q", name, text, tc.want)
				}
			}
		})
	}
}

func TestOpenRefusesStrangers(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "precious"), []byte("x"), 0o644)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not an ingot store") {
		t.Errorf("Open of a non-empty non-store directory: err = %v", err)
	}
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, backend.MarkerFile), []byte("ingot store v9\n"), 0o644)
	if _, err := Open(dir2); err == nil || !strings.Contains(err.Error(), "v9") {
		t.Errorf("Open of a future store: err = %v", err)
	}
}

func TestResolveAmbiguous(t *testing.T) {
	ctx := context.Background()
	s, _, d, _ := testImage(t)
	// A second image whose digest shares d's first four hex digits.
	var other images.Digest
	for i := 0; ; i++ {
		m, _ := images.NewManifest([]images.Entry{{Path: ".", Type: images.TypeDir, Mode: 0o755, Mtime: int64(i)}})
		if m.Digest().String()[:4] != d.String()[:4] {
			continue
		}
		var err error
		if other, err = s.PutManifest(ctx, m); err != nil {
			t.Fatal(err)
		}
		break
	}
	if _, err := s.Resolve(ctx, d.String()[:4]); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("Resolve of a shared prefix: err = %v, want ErrAmbiguous", err)
	}
	n := 5
	for d.String()[:n] == other.String()[:n] {
		n++
	}
	if got, err := s.Resolve(ctx, d.String()[:n]); err != nil || got != d {
		t.Errorf("Resolve of a unique prefix = %s, %v; want %s", got, err, d)
	}
	if _, err := s.Resolve(ctx, "abc"); err == nil {
		t.Errorf("Resolve of a 3-digit prefix succeeded")
	}
}

// TestExportRefusesDamage: an object whose bytes do not match its name
// fails the export with ErrCorrupt naming the file, whether the file is
// one chunk or several. (WriteTar does not hash content the store has
// verified, so the store's own check is the one that must hold.)
func TestExportRefusesDamage(t *testing.T) {
	for _, tt := range []struct{ name, path string }{
		{"single-chunk file", "small"},
		{"chunk of a multi-chunk file", "big"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, dir, d, m := testImage(t)
			id := m.Lookup(tt.path).SHA256
			if tt.path == "big" {
				chunks, err := s.FileChunks(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				id = chunks[1].ID
			}
			good, err := s.GetChunk(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			bad := bytes.Clone(good)
			bad[len(bad)/2] ^= 1
			// A well-formed zstd frame of other bytes: only the hash can tell.
			p := filepath.Join(dir, DigestHandle(KindObject, id).Path())
			if err := os.WriteFile(p, s.encoder().EncodeAll(bad, nil), 0o644); err != nil {
				t.Fatal(err)
			}
			err = s.Export(ctx, d, io.Discard, compression.Zstd)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "./"+tt.path) {
				t.Fatalf("Export = %v, want ErrCorrupt naming ./%s", err, tt.path)
			}
		})
	}
}

// Verify reads every object of every pack: a damaged pack is reported.
func TestVerifyPacks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Import(ctx, bytes.NewReader(packTestTar(t)), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if probs, err := s.Verify(ctx, nil); err != nil || len(probs) != 0 {
		t.Fatalf("Verify of a sound store = %v, %v", probs, err)
	}
	var pack string
	s.b.List(ctx, KindPack, func(n string) error { pack = n; return nil })
	p := filepath.Join(dir, "packs", pack)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x10
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	fresh, _ := Open(dir)
	defer fresh.Close()
	probs, err := fresh.Verify(ctx, nil)
	named := false
	for _, p := range probs {
		named = named || strings.HasPrefix(p.What, "packs/"+pack)
	}
	if err != nil || !named {
		t.Fatalf("Verify of a damaged pack = %d problems, %v; want one naming packs/%s", len(probs), err, pack)
	}
}
