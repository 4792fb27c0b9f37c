package backend_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/images/store/storetest"
)

func TestLocalConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (backend.Backend, backend.Backend) {
		b, err := backend.OpenLocal(filepath.Join(t.TempDir(), "store"))
		if err != nil {
			t.Fatal(err)
		}
		return b, b
	})
}

// serveStore serves dir with the store's own HTTP server.
func serveStore(t *testing.T, dir string, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	h, err := backend.NewServer(dir, backend.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (backend.Backend, backend.Backend) {
		dir := filepath.Join(t.TempDir(), "store")
		local, err := backend.OpenLocal(dir)
		if err != nil {
			t.Fatal(err)
		}
		srv := serveStore(t, dir, nil)
		b, err := retryHTTP(srv.URL, 2, time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		return local, b
	})
}

// A server that damages what it sends: the client must refuse the data,
// naming the object and the server, and never hand it out.
func TestHTTPHostileServer(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	w, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("ingot chunk "), 5000)
	sha, _, err := w.PutFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		damage  func(b []byte) []byte
		wantErr error
	}{
		{"flip", func(b []byte) []byte { b = bytes.Clone(b); b[len(b)-3] ^= 1; return b }, backend.ErrCorrupt},
		{"swap", func(b []byte) []byte { return mustRaw(t, "other content") }, backend.ErrCorrupt},
		{"truncate", nil, nil}, // Content-Length larger than the body
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := serveStore(t, dir, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
					hits.Add(1)
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, r)
					body := rec.Body.Bytes()
					if tc.damage != nil {
						body = tc.damage(body)
						rw.WriteHeader(rec.Code)
						rw.Write(body)
						return
					}
					// Truncate: promise the full length, send half, hang up.
					rw.Header().Set("Content-Length", itoa(len(body)))
					rw.WriteHeader(rec.Code)
					rw.Write(body[:len(body)/2])
					panic(http.ErrAbortHandler)
				})
			})
			b, err := retryHTTP(srv.URL, 2, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			r := store.New(b)
			_, err = r.GetChunk(ctx, sha)
			if err == nil {
				t.Fatal("GetChunk from a damaging server succeeded")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), sha.String()) || !strings.Contains(err.Error(), srv.URL) {
				t.Errorf("error %q names neither the object nor the server", err)
			}
			if tc.name == "truncate" && hits.Load() != 3 {
				t.Errorf("truncated body fetched %d times, want 3 (1 + 2 retries)", hits.Load())
			}
		})
	}
}

func mustRaw(t *testing.T, s string) []byte {
	dir := filepath.Join(t.TempDir(), "s")
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	sha, _, err := st.PutFile(context.Background(), strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.Backend().Get(context.Background(), backend.DigestHandle(backend.KindObject, sha), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func itoa(n int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + string(appendInt(nil, n))) }

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

// 5xx answers and resets are retried with backoff; 404 is not; mirrors
// are tried in order.
func TestHTTPRetriesAndMirrors(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	w, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	sha, _, err := w.PutFile(ctx, strings.NewReader("retried content"))
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	flaky := serveStore(t, dir, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if calls.Add(1) <= 2 {
				http.Error(rw, "overloaded", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(rw, r)
		})
	})
	b, _ := retryHTTP(flaky.URL, 3, time.Millisecond)
	if _, err := store.New(b).GetChunk(ctx, sha); err != nil {
		t.Fatalf("GetChunk after two 503s: %v", err)
	}
	if calls.Load() != 3 {
		t.Errorf("%d requests, want 3", calls.Load())
	}

	dead := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		http.Error(rw, "down", http.StatusBadGateway)
	}))
	defer dead.Close()
	good := serveStore(t, dir, nil)
	deadB, _ := retryHTTP(dead.URL, 1, time.Millisecond)
	goodB, _ := retryHTTP(good.URL, 1, time.Millisecond)
	b = backend.NewFailover(deadB, goodB)
	if _, err := store.New(b).GetChunk(ctx, sha); err != nil {
		t.Errorf("GetChunk with the first mirror down: %v", err)
	}

	b, _ = retryHTTP(dead.URL, 1, time.Millisecond)
	_, err = store.New(b).GetChunk(ctx, sha)
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Errorf("GetChunk from a dead server: err = %v, want the 502 named", err)
	}

	// Cancellation stops the backoff.
	cctx, cancel := context.WithCancel(ctx)
	b, _ = retryHTTP(dead.URL, 10, time.Hour)
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if _, err := store.New(b).GetChunk(cctx, sha); !errors.Is(err, context.Canceled) {
		t.Errorf("GetChunk canceled during backoff: err = %v, want context.Canceled", err)
	}
}

// The server serves the layout and nothing else.
func TestServerServesOnlyTheLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	w, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := serveStore(t, dir, nil)
	checkServesOnlyLayout(t, srv.URL, dir, w, true)
}

// checkServesOnlyLayout checks a server of the store in dir (written
// through w): objects, refs and the marker with their cache headers,
// nothing else (no listings, no temp files, nothing outside), read only.
// methods: whether the server refuses PUT and DELETE with 405 (nginx
// answers those differently, but changes nothing either way).
func checkServesOnlyLayout(t *testing.T, base, dir string, w *store.Store, methods bool) {
	t.Helper()
	ctx := context.Background()
	sha, _, err := w.PutFile(ctx, strings.NewReader("served"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "objects", sha.String()[:2], ".tmp-1-1"), []byte("temp"), 0o644)
	os.WriteFile(filepath.Join(filepath.Dir(dir), "secret"), []byte("secret"), 0o644)
	obj := "/objects/" + sha.String()[:2] + "/" + sha.String()
	tests := []struct {
		method, path string
		code         int
		cache        string
	}{
		{"GET", obj, 200, "public, max-age=31536000, immutable"},
		{"HEAD", obj, 200, "public, max-age=31536000, immutable"},
		{"GET", "/ingot-store", 200, ""},
		{"GET", "/", 404, ""},
		{"GET", "/objects/", 404, ""},
		{"GET", "/objects/" + sha.String()[:2] + "/", 404, ""},
		{"GET", "/objects/" + sha.String()[:2] + "/.tmp-1-1", 404, ""},
		{"GET", "/../secret", 404, ""},
		{"GET", "/%2e%2e/secret", 404, ""},
		{"GET", "/objects/00/" + sha.String(), 404, ""},
		{"GET", "/refs/web/v1", 404, ""},
	}
	if methods {
		tests = append(tests, struct {
			method, path string
			code         int
			cache        string
		}{"PUT", obj, 405, ""}, struct {
			method, path string
			code         int
			cache        string
		}{"DELETE", obj, 405, ""})
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if (resp.StatusCode == 200) != (tc.code == 200) || (tc.code != 200 && resp.StatusCode < 400) {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.code)
		}
		if tc.cache != "" && resp.Header.Get("Cache-Control") != tc.cache {
			t.Errorf("%s %s: Cache-Control %q, want %q", tc.method, tc.path, resp.Header.Get("Cache-Control"), tc.cache)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, obj)); err != nil {
		t.Errorf("the object is gone after PUT/DELETE requests: %v", err)
	}
	// Refs are served for revalidation.
	m, _ := images.NewManifest([]images.Entry{{Path: ".", Type: images.TypeDir, Mode: 0o755}})
	d, err := w.PutManifest(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.SetRef(ctx, "web:v1", d); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(base + "/refs/web/v1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != d.String()+"\n" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("GET ref = %q (Cache-Control %q)", body, resp.Header.Get("Cache-Control"))
	}
}

// A hostile HTTP server: a body that never ends, and a Content-Length
// past the limit. The backend reads no more than one byte past the limit
// of the kind, and says which file and which limit.
func TestHTTPBodyLimit(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/images/") {
			w.Header().Set("Content-Length", "1073741824")
			w.WriteHeader(http.StatusOK)
			n, _ := w.Write(make([]byte, 4096))
			sent.Add(int64(n))
			return
		}
		buf := make([]byte, 32<<10)
		for {
			n, err := w.Write(buf)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	b, err := retryHTTP(srv.URL, 0, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	obj := backend.DigestHandle(backend.KindObject, images.Sum([]byte("x")))
	got, err := b.Get(ctx, obj, 300<<10)
	if !errors.Is(err, backend.ErrTooLarge) || !strings.Contains(err.Error(), obj.Path()) || !strings.Contains(err.Error(), "307200") {
		t.Fatalf("endless body: %d bytes, %v; want ErrTooLarge naming %s and the limit", len(got), err, obj.Path())
	}
	ix := backend.DigestHandle(backend.KindImage, images.Sum([]byte("x")))
	if _, err := b.Get(ctx, ix, 1<<20); !errors.Is(err, backend.ErrTooLarge) || !strings.Contains(err.Error(), "Content-Length") {
		t.Fatalf("Content-Length past the limit: %v; want ErrTooLarge from the header", err)
	}
	// Through a Store the limit is the kind's: a chunk of 256 KiB at most.
	s := store.New(b)
	defer s.Close()
	if _, err := s.GetChunk(ctx, images.Sum([]byte("x"))); !errors.Is(err, backend.ErrTooLarge) {
		t.Fatalf("GetChunk of an endless body: %v, want ErrTooLarge", err)
	}
	t.Logf("the server got %d KiB out before the client hung up", sent.Load()>>10)
}

// A FIFO planted where an object belongs (by whoever can write the store
// directory) is refused at once: the reader neither blocks at open nor
// reads it.
func TestLocalGetRefusesFIFO(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	b, err := backend.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("content")
	h := backend.DigestHandle(backend.KindObject, images.Sum(data))
	p := filepath.Join(dir, filepath.FromSlash(h.Path()))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.Get(context.Background(), h, 1<<20)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("Get of a FIFO: %v, want a refusal naming it", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Get blocked on a FIFO in the store directory")
	}
}

// A server that does not answer a range request with exactly the range
// (the whole file with 200, other bytes, another length) is refused with
// a clear error, and nothing it sent is handed out.
func TestHTTPRangeHostile(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	local, err := backend.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("pack bytes "), 1000)
	h := backend.DigestHandle(backend.KindPack, images.Sum(data))
	if err := local.Put(ctx, h, data, true); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		wrap func(h http.Handler) http.Handler
		want string
	}{
		{"200 instead of 206", func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Header.Del("Range")
				h.ServeHTTP(w, r)
			})
		}, "206"},
		{"other range", func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Header.Set("Range", "bytes=0-99")
				h.ServeHTTP(w, r)
			})
		}, "Content-Range"},
		{"other length", func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.Header().Set("Content-Length", itoa(rec.Body.Len()+5))
				w.WriteHeader(rec.Code)
				w.Write(append(rec.Body.Bytes(), "extra"...))
			})
		}, "Content-Length"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := serveStore(t, dir, tc.wrap)
			b, err := retryHTTP(srv.URL, 1, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			got, err := b.GetRange(ctx, h, 1000, 200)
			if err == nil || got != nil {
				t.Fatalf("GetRange = %d bytes, %v; want an error and no bytes", len(got), err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), h.Path()) {
				t.Errorf("error %q does not say %q nor name %s", err, tc.want, h.Path())
			}
		})
	}
	// The honest server gives the range.
	srv := serveStore(t, dir, nil)
	b, _ := backend.NewHTTP(srv.URL)
	if got, err := b.GetRange(ctx, h, 1000, 200); err != nil || !bytes.Equal(got, data[1000:1200]) {
		t.Errorf("GetRange from an honest server = %q, %v", got, err)
	}
}

// retryHTTP is an HTTP backend on u retrying n times from backoff.
func retryHTTP(u string, n int, backoff time.Duration) (backend.Backend, error) {
	b, err := backend.NewHTTP(u)
	if err != nil {
		return nil, err
	}
	return backend.Retry(b, n, backoff), nil
}

// The decorators pass the conformance suite around the backends they
// wrap: a counted, retrying local directory, and a Failover whose first
// mirror is down in front of the store's own server.
func TestDecoratedConformance(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) (backend.Backend, backend.Backend) {
			l, err := backend.OpenLocal(filepath.Join(t.TempDir(), "store"))
			if err != nil {
				t.Fatal(err)
			}
			b := backend.Count(backend.Retry(l, 2, time.Millisecond), &backend.Counts{})
			return b, b
		})
	})
	t.Run("failover", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) (backend.Backend, backend.Backend) {
			dir := filepath.Join(t.TempDir(), "store")
			local, err := backend.OpenLocal(dir)
			if err != nil {
				t.Fatal(err)
			}
			dead := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				http.Error(rw, "down", http.StatusBadGateway)
			}))
			t.Cleanup(dead.Close)
			var c backend.Counts
			deadB, err := retryHTTP(dead.URL, 1, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			goodB, err := retryHTTP(serveStore(t, dir, nil).URL, 1, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			return local, backend.NewFailover(backend.Count(deadB, &c), backend.Count(goodB, &c))
		})
	})
}
