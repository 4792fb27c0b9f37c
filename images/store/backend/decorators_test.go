package backend_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/images/store/backend"
)

// Failover's one rule: "not found" moves on (a stale mirror) except for
// deltas, where the first answer is final; failures move on and are
// named; bytes that fail the reader's check are taken from the next
// location; "not found" is the answer only when no location has the file.
func TestFailoverRule(t *testing.T) {
	ctx := context.Background()
	newLocal := func() *backend.Local {
		l, err := backend.OpenLocal(filepath.Join(t.TempDir(), "store"))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	stale, good := newLocal(), newLocal()
	w := store.New(good)
	defer w.Close()
	content := []byte("some content, one chunk")
	sha, _, err := w.PutFile(ctx, strings.NewReader(string(content)))
	if err != nil {
		t.Fatal(err)
	}
	delta := store.DeltaHandle(images.Sum([]byte("a")), sha)
	if err := good.Put(ctx, delta, []byte("d"), false); err != nil {
		t.Fatal(err)
	}
	var c backend.Counts
	f := backend.NewFailover(backend.Count(stale, &c), backend.Count(good, &c))
	r := store.New(f)
	defer r.Close()

	if got, err := r.GetChunk(ctx, sha); err != nil || string(got) != string(content) {
		t.Fatalf("GetChunk past a stale mirror = %q, %v", got, err)
	}
	if ok, err := f.Has(ctx, backend.DigestHandle(backend.KindObject, sha)); !ok || err != nil {
		t.Errorf("Has past a stale mirror = %v, %v", ok, err)
	}
	// The good mirror answered last: it is asked first now, and has the delta.
	if _, err := f.Get(ctx, delta, 100); err != nil {
		t.Errorf("Get delta from the mirror that answered last: %v", err)
	}
	f2 := backend.NewFailover(stale, good)
	if _, err := f2.Get(ctx, delta, 100); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Get delta, first mirror stale: %v, want its ErrNotFound (final for deltas)", err)
	}
	absent := backend.DigestHandle(backend.KindObject, images.Sum([]byte("absent")))
	if _, err := f2.Get(ctx, absent, 100); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("Get absent object: %v, want ErrNotFound", err)
	}

	// Bytes that fail the check come from the next location.
	damaged := newLocal()
	h := backend.DigestHandle(backend.KindObject, sha)
	if err := damaged.Put(ctx, h, []byte("not zstd"), false); err != nil {
		t.Fatal(err)
	}
	var c2 backend.Counts
	r2 := store.New(backend.NewFailover(backend.Count(damaged, &c2), backend.Count(good, &c2)))
	defer r2.Close()
	if got, err := r2.GetChunk(ctx, sha); err != nil || string(got) != string(content) {
		t.Fatalf("GetChunk past a damaged mirror = %q, %v", got, err)
	}
	if c2.Failures.Load() != 1 || c2.Requests.Load() != 2 {
		t.Errorf("Counts: %d requests, %d failures; want 2 and 1", c2.Requests.Load(), c2.Failures.Load())
	}
	r3 := store.New(backend.NewFailover(damaged, stale))
	defer r3.Close()
	if _, err := r3.GetChunk(ctx, sha); !errors.Is(err, backend.ErrNotFound) || !strings.Contains(err.Error(), "corrupt data from "+damaged.Location()) {
		t.Errorf("GetChunk, damaged and stale mirrors: %v; want ErrNotFound naming the damaged one", err)
	}
}

// Retry retries transient failures only, with backoff, and stops at the
// context's end.
func TestRetry(t *testing.T) {
	ctx := context.Background()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if hits.Add(1)%2 == 1 {
			http.Error(rw, "busy", http.StatusServiceUnavailable)
			return
		}
		http.NotFound(rw, r)
	}))
	defer srv.Close()
	h, err := backend.NewHTTP(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	obj := backend.DigestHandle(backend.KindObject, images.Sum([]byte("x")))
	if _, err := h.Get(ctx, obj, 10); !errors.Is(err, backend.ErrTransient) || hits.Load() != 1 {
		t.Fatalf("HTTP Get of a 503: %v after %d requests; want one request, ErrTransient", err, hits.Load())
	}
	hits.Store(0)
	if _, err := backend.Retry(h, 3, time.Millisecond).Get(ctx, obj, 10); !errors.Is(err, backend.ErrNotFound) || hits.Load() != 2 {
		t.Errorf("Retry: %v after %d requests; want ErrNotFound after 2 (a 404 is not retried)", err, hits.Load())
	}
	hits.Store(0)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := backend.Retry(h, 5, time.Hour).Get(cctx, obj, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Retry with an hour's backoff: %v, want the deadline", err)
	}
}
