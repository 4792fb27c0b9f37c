package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ServerOptions tunes the store's HTTP server.
type ServerOptions struct {
	// Logger receives one line per request; nil: no logging.
	Logger *slog.Logger
	// BytesPerSecond caps the egress of all responses together (a token
	// bucket); 0 means no limit.
	BytesPerSecond int64
}

// NewServer returns a read-only HTTP handler serving the store in dir with
// the layout's paths, which is exactly what a static server (nginx) would
// serve from that directory: no listings, nothing outside the layout
// (temp files included), GET and HEAD only. Content-addressed files are
// sent as immutable; refs as "no-cache" so caches revalidate them.
func NewServer(dir string, opts ServerOptions) (http.Handler, error) {
	if _, err := OpenLocal(dir); err != nil {
		return nil, err
	}
	s := &server{dir: dir, log: opts.Logger}
	if opts.BytesPerSecond > 0 {
		s.bucket = newBucket(opts.BytesPerSecond)
	}
	return s, nil
}

type server struct {
	dir    string
	log    *slog.Logger
	bucket *bucket
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, ctx: r.Context(), bucket: s.bucket}
	s.serve(rec, r)
	if s.log != nil {
		s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "bytes", rec.bytes,
			"remote", r.RemoteAddr, "duration", time.Since(start).Round(time.Microsecond))
	}
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "read-only store: GET and HEAD only", http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	cache := "public, max-age=3600"
	ctype := "text/plain; charset=utf-8"
	if p != markerFile {
		h, err := ParsePath(p)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if h.Kind == KindRef {
			cache = "no-cache"
		} else {
			cache = "public, max-age=31536000, immutable"
			ctype = "application/zstd"
		}
	}
	f, err := os.Open(filepath.Join(s.dir, filepath.FromSlash(p)))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			http.NotFound(w, r)
		} else {
			http.Error(w, "cannot read", http.StatusInternalServerError)
		}
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", cache)
	w.Header().Set("Content-Type", ctype)
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

// recorder notes status and size, and spends egress tokens per write.
type recorder struct {
	http.ResponseWriter
	ctx    context.Context
	bucket *bucket
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n := 0
	for len(b) > 0 {
		piece := b
		if r.bucket != nil {
			if len(piece) > r.bucket.piece {
				piece = piece[:r.bucket.piece]
			}
			if err := r.bucket.wait(r.ctx, len(piece)); err != nil {
				return n, err
			}
		}
		m, err := r.ResponseWriter.Write(piece)
		n += m
		r.bytes += int64(m)
		if err != nil {
			return n, err
		}
		b = b[m:]
	}
	return n, nil
}

// bucket is a token bucket of bytes shared by every response.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
	piece  int // largest write spent at once
}

func newBucket(rate int64) *bucket {
	burst := float64(rate) / 10
	if burst < 16<<10 {
		burst = 16 << 10
	}
	return &bucket{rate: float64(rate), burst: burst, tokens: burst, last: time.Now(), piece: int(burst)}
}

// reserve takes n tokens at time now and returns how long the caller
// must wait before sending them (the time the bucket needs to get out of
// debt).
func (b *bucket) reserve(now time.Time, n int) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens += now.Sub(b.last).Seconds() * b.rate
	b.last = now
	if b.tokens > b.burst {
		b.tokens = b.burst
	}
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// wait takes n tokens, sleeping while the bucket is in debt.
func (b *bucket) wait(ctx context.Context, n int) error {
	d := b.reserve(time.Now(), n)
	if d == 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ParseRate reads a byte rate: a number with an optional K, M or G suffix
// (powers of 1024) and optional "/s" or "B/s", e.g. "512K", "10M", "1.5G";
// "0" means unlimited.
func ParseRate(s string) (int64, error) {
	v := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(s, "/s"), "B"), "i")
	mult := 1.0
	if v != "" {
		switch v[len(v)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			v = v[:len(v)-1]
		}
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f*mult > 1<<50 {
		return 0, fmt.Errorf("rate %q: want a number of bytes per second with an optional K, M or G suffix", s)
	}
	return int64(f * mult), nil
}
