package debrepo_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ingotfleet/ingot/builder/debrepo"
)

func TestCacheFetch(t *testing.T) {
	debs := sampleDebs(t)
	dir := t.TempDir()
	var items []debrepo.Item
	for _, d := range debs {
		data, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, filepath.Base(d)), data, 0o644)
		sum := sha256.Sum256(data)
		items = append(items, debrepo.Item{Name: filepath.Base(d), Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
	}
	var requests, ranged atomic.Int32
	fs := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("Range") != "" {
			ranged.Add(1)
		}
		fs.ServeHTTP(w, r)
	}))
	defer srv.Close()
	for i := range items {
		items[i].URL = srv.URL + "/" + items[i].Name
	}
	cache := &debrepo.Cache{Dir: t.TempDir(), Parallel: 2}

	// An interrupted download of the first item left half of it behind.
	first, _ := os.ReadFile(debs[0])
	os.MkdirAll(filepath.Join(cache.Dir, "partial"), 0o755)
	os.WriteFile(filepath.Join(cache.Dir, "partial", items[0].SHA256+".part"), first[:len(first)/2], 0o644)

	var done, cached int
	paths, err := cache.Fetch(context.Background(), items, func(e debrepo.Event) {
		if e.Done {
			done++
		}
		if e.Cached {
			cached++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if done != 3 || cached != 0 || ranged.Load() != 1 {
		t.Errorf("done %d cached %d ranged requests %d, want 3 0 1", done, cached, ranged.Load())
	}
	for i, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != items[i].SHA256 {
			t.Errorf("%s: wrong content", p)
		}
	}
	// Second fetch: everything cached, no request.
	before := requests.Load()
	done, cached = 0, 0
	if _, err := cache.Fetch(context.Background(), items, func(e debrepo.Event) {
		if e.Cached {
			cached++
		}
	}); err != nil {
		t.Fatal(err)
	}
	if cached != 3 || requests.Load() != before {
		t.Errorf("second fetch: cached %d, %d new requests", cached, requests.Load()-before)
	}
}

func TestCacheRefusesTamperedDeb(t *testing.T) {
	debs := sampleDebs(t)
	data, _ := os.ReadFile(debs[1])
	sum := sha256.Sum256(data)
	dir := t.TempDir()
	bad := append([]byte(nil), data...)
	bad[len(bad)-1] ^= 1
	name := filepath.Base(debs[1])
	os.WriteFile(filepath.Join(dir, name), bad, 0o644)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	cache := &debrepo.Cache{Dir: t.TempDir()}
	item := debrepo.Item{Name: name, URL: srv.URL + "/" + name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	_, err := cache.Fetch(context.Background(), []debrepo.Item{item}, nil)
	if !errors.Is(err, debrepo.ErrHashMismatch) || !strings.Contains(err.Error(), name) {
		t.Fatalf("tampered .deb: err = %v", err)
	}
	if cache.Has(item.SHA256, item.Size) {
		t.Error("tampered file entered the cache")
	}
	if ents, _ := os.ReadDir(filepath.Join(cache.Dir, "partial")); len(ents) != 0 {
		t.Errorf("partial download of a bad file kept: %v", ents)
	}
	// A file that is too long is refused too.
	os.WriteFile(filepath.Join(dir, name), append(data, 'x'), 0o644)
	if _, err := cache.Fetch(context.Background(), []debrepo.Item{item}, nil); !errors.Is(err, debrepo.ErrHashMismatch) {
		t.Fatalf("too long .deb: err = %v", err)
	}
	// A missing file names its URL.
	item.URL = srv.URL + "/missing.deb"
	if _, err := cache.Fetch(context.Background(), []debrepo.Item{item}, nil); !errors.Is(err, debrepo.ErrNotFound) || !strings.Contains(err.Error(), "missing.deb") {
		t.Fatalf("missing .deb: err = %v", err)
	}
}

func TestHostSources(t *testing.T) {
	srcs, err := debrepo.HostSources("testdata/apt")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range srcs {
		got = append(got, s.URL+" "+strings.Join(s.Suites, ",")+" "+strings.Join(s.Components, ",")+" "+strings.Join(s.SignedBy, ",")+" "+filepath.Base(s.File))
	}
	want := []string{
		"http://example.invalid/debian bookworm main,contrib /keys/test.asc sources.list:2",
		"http://deb.example.invalid/debian bookworm,bookworm-updates main /keys/test.gpg debian.sources:1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSourcesErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"list: no suite", "deb http://x/\n", "s.list:1: want URI and suite"},
		{"list: bad type", "rpm http://x/ a b\n", "s.list:1: unknown type"},
		{"list: flat", "deb http://x/ ./\n", "flat repository"},
		{"list: options", "deb [arch=amd64 http://x/ a b\n", "closing ]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := debrepo.ParseSourcesList([]byte(tc.in), "s.list")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	_, err := debrepo.ParseSourcesDeb822([]byte("Types: deb\nURIs: http://x/\n"), "s.sources")
	if err == nil || !strings.Contains(err.Error(), "s.sources:1: want URIs and Suites") {
		t.Fatalf("err = %v", err)
	}
}

// TestCacheConcurrentFetch runs two fetches of the same files into one
// cache directory at once (two builds sharing a cache): both succeed and
// every file is whole.
func TestCacheConcurrentFetch(t *testing.T) {
	debs := sampleDebs(t)
	dir := t.TempDir()
	var items []debrepo.Item
	for _, d := range debs {
		data, _ := os.ReadFile(d)
		os.WriteFile(filepath.Join(dir, filepath.Base(d)), data, 0o644)
		sum := sha256.Sum256(data)
		items = append(items, debrepo.Item{Name: filepath.Base(d), Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	for i := range items {
		items[i].URL = srv.URL + "/" + items[i].Name
	}
	cacheDir := t.TempDir()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := (&debrepo.Cache{Dir: cacheDir}).Fetch(context.Background(), items, nil)
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	c := &debrepo.Cache{Dir: cacheDir}
	for _, it := range items {
		data, err := os.ReadFile(c.Path(it.SHA256))
		if sum := sha256.Sum256(data); err != nil || hex.EncodeToString(sum[:]) != it.SHA256 {
			t.Errorf("%s: damaged in the cache (%v)", it.Name, err)
		}
	}
}
