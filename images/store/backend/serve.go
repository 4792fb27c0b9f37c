package backend

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ingotfleet/ingot/internal/rate"
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
		s.bucket = rate.New(opts.BytesPerSecond)
	}
	return s, nil
}

type server struct {
	dir    string
	log    *slog.Logger
	bucket *rate.Limiter
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
	if p != MarkerFile {
		h, err := ParsePath(p)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if h.Kind.Mutable() {
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
	bucket *rate.Limiter
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
			if len(piece) > r.bucket.Burst() {
				piece = piece[:r.bucket.Burst()]
			}
			if err := r.bucket.WaitN(r.ctx, len(piece)); err != nil {
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
