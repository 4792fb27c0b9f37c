package fetch

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/images/store/delta"
	"github.com/ingotfleet/ingot/internal/rate"
)

// A StoreSource falls through a stale mirror (one without the image) and a
// dead one, verifies what it gets, and says "not found" only when every
// location that answers says so.
func TestStoreSourceLocations(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	content := randomBytes(3, 3*store.MaxChunk)
	sha, size, err := f.st.PutFile(ctx, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	m, err := images.NewManifest([]images.Entry{
		{Path: ".", Type: images.TypeDir, Mode: 0o755},
		{Path: "big", Type: images.TypeFile, Mode: 0o644, Size: size, SHA256: sha},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.st.PutManifest(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	f.sign(t, d, f.key)
	stale := t.TempDir() // an empty store: the mirror has not caught up
	if _, err := backend.OpenLocal(stale); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(f.store)))
	defer srv.Close()

	for name, locs := range map[string][]string{
		"stale dir, good dir":   {stale, f.store},
		"dead URL, good URL":    {deadURL(t), srv.URL},
		"stale dir, good URL":   {stale, srv.URL},
		"good URL, dead, stale": {srv.URL, deadURL(t), stale},
	} {
		t.Run(name, func(t *testing.T) {
			src := httpSource(t, locs...)
			mb, err := src.Manifest(ctx, d)
			if err != nil || images.Sum(mb) != d {
				t.Fatalf("Manifest: %v", err)
			}
			if _, err := src.Signature(ctx, d); err != nil {
				t.Fatalf("Signature: %v", err)
			}
			src.limitIndex(d, store.IndexLimit(m))
			chunks, err := src.Chunks(ctx, sha, size)
			if err != nil || len(chunks) < 2 {
				t.Fatalf("Chunks = %d, %v; want the big file's chunks from the index", len(chunks), err)
			}
			got, err := src.Object(ctx, sha, size)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("Object: %d bytes, %v", len(got), err)
			}
			_, err = src.Delta(ctx, sha, images.Sum([]byte("x")), delta.NewBase(content), 1)
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("Delta not stored: %v, want ErrNotFound", err)
			}
			absent := images.Sum([]byte("no such image"))
			if _, err := src.Manifest(ctx, absent); !errors.Is(err, ErrNotFound) {
				t.Fatalf("absent manifest: %v, want ErrNotFound", err)
			}
			if recv, reqs, _ := src.Stats(); recv == 0 || reqs == 0 {
				t.Errorf("Stats = %d bytes, %d requests", recv, reqs)
			}
		})
	}
	if _, err := OpenSource(nil, SourceOptions{}); err == nil {
		t.Error("OpenSource with no locations succeeded")
	}
	if _, err := OpenSource([]string{"ftp://x"}, SourceOptions{}); err == nil {
		t.Error("OpenSource of ftp://x succeeded")
	}
}

// The download limit paces HTTP bodies: at 1 KiB/s a 768 KiB file cannot
// arrive within a second; without the limit it arrives.
func TestStoreSourceLimit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	content := randomBytes(4, 3*store.MaxChunk)
	sha, size, err := f.st.PutFile(ctx, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(f.store)))
	defer srv.Close()
	for _, limit := range []*rate.Limiter{nil, rate.New(1 << 10)} {
		src, err := OpenSource([]string{srv.URL}, SourceOptions{Limit: limit, Retries: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		budget := time.Second // 768 KiB at 1 KiB/s takes 12 minutes
		if limit == nil {
			budget = time.Minute // milliseconds on loopback; generous for a loaded machine
		}
		tctx, cancel := context.WithTimeout(ctx, budget)
		_, err = src.Object(tctx, sha, size)
		cancel()
		if limit == nil && err != nil {
			t.Fatalf("unlimited: %v", err)
		}
		if limit != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("1 KiB/s: err = %v, want the deadline to pass first", err)
		}
	}
}
