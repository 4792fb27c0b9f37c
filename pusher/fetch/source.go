package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/images/store/delta"
	"github.com/ingotfleet/ingot/internal/rate"
)

// ErrNotFound is wrapped by a Source's errors for what no store holds
// (the same value as store.ErrNotFound, so either test works).
var ErrNotFound = store.ErrNotFound

// ErrCorrupt is wrapped by errors about bytes that do not match their
// hash (store.ErrCorrupt).
var ErrCorrupt = store.ErrCorrupt

// Source is where a sync gets an image. Every method returns verified
// bytes: content whose sha256 is the name asked for.
type Source interface {
	// Manifest returns the image's manifest bytes.
	Manifest(ctx context.Context, d images.Digest) ([]byte, error)
	// Signature returns the image's signature file (ErrNotFound if unsigned).
	Signature(ctx context.Context, d images.Digest) ([]byte, error)
	// Object returns a file's content; size is the expected length.
	Object(ctx context.Context, sha images.Digest, size int64) ([]byte, error)
	// Delta returns content "to" (of size bytes) rebuilt from old (whose
	// sha256 must be from: checked) and a precomputed delta; ErrNotFound
	// when the store has none.
	Delta(ctx context.Context, from, to images.Digest, old *delta.Base, size int64) ([]byte, error)
}

// ChunkSource is a Source that also serves a file's content chunk by
// chunk, so a sync fetches only the chunks the host does not hold.
type ChunkSource interface {
	Source
	// Chunks lists the chunks of the content sha of size bytes.
	Chunks(ctx context.Context, sha images.Digest, size int64) ([]store.Chunk, error)
	// Chunk returns the verified bytes of chunk id.
	Chunk(ctx context.Context, c store.Chunk) ([]byte, error)
}

// SourceOptions tune OpenSource.
type SourceOptions struct {
	TLS     *tls.Config   // for https store URLs (nil: the system's roots)
	Limit   *rate.Limiter // download bandwidth, shared by every request
	Retries int           // retries of a failed request per URL (default 3)
	Backoff time.Duration // first backoff (default 100ms), doubled each retry
	Log     *slog.Logger
}

// StoreSource is a Source over images/store: one or more locations of the
// same store, each a directory or an http(s) URL (ingot serve, nginx, a
// CDN), read through one Store over the store's backend decorators: each
// HTTP location retries a network error, 5xx or truncated body with
// backoff (backend.Retry), every location's reads are counted (backend.Count),
// and backend.Failover moves a read on to the next location by its one
// rule (failures, bytes that do not match their hash, and — except for
// deltas, absent for most files and optional — "not found": a stale
// mirror must not stop a sync). Content comes chunk by chunk
// (ChunkSource), the chunk lists of an image from its one index object.
// Safe for concurrent use.
type StoreSource struct {
	st     *store.Store
	locs   []string
	log    *slog.Logger
	counts backend.Counts

	mu       sync.Mutex
	image    images.Digest // the last image whose manifest was asked for
	indexMax int64         // the most bytes its index can take (limitIndex)
	indexes  map[images.Digest]*imageIndex
}

type imageIndex struct {
	once   sync.Once
	ix     store.Index
	err    error
	failed bool // under StoreSource.mu
}

// OpenSource opens a StoreSource over locations (directories or URLs).
func OpenSource(locations []string, opts SourceOptions) (*StoreSource, error) {
	if len(locations) == 0 {
		return nil, errors.New("no store locations configured")
	}
	if opts.Retries <= 0 {
		opts.Retries = 3
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 100 * time.Millisecond
	}
	src := &StoreSource{log: opts.Log, indexes: map[images.Digest]*imageIndex{}}
	var client *http.Client
	var bs []store.Backend
	for _, loc := range locations {
		var b store.Backend
		if strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://") {
			if client == nil {
				client = newHTTPClient(opts.TLS, opts.Limit)
			}
			h, err := backend.NewHTTP(loc, backend.WithHTTPClient(client))
			if err != nil {
				return nil, err
			}
			b = backend.Retry(h, opts.Retries, opts.Backoff)
		} else if strings.Contains(loc, "://") {
			return nil, fmt.Errorf("store location %q: want a directory or an http(s):// URL", loc)
		} else {
			if fi, err := os.Stat(loc); err != nil || !fi.IsDir() {
				return nil, fmt.Errorf("store location %q: not a directory (nor an http(s):// URL)", loc)
			}
			l, err := backend.OpenLocal(loc)
			if err != nil {
				return nil, err
			}
			b = l
		}
		bs = append(bs, backend.Count(b, &src.counts))
		src.locs = append(src.locs, loc)
	}
	src.st = store.New(backend.NewFailover(bs...), store.WithWorkers(2))
	return src, nil
}

// newHTTPClient is a keep-alive client whose response bodies are paced
// by limit.
func newHTTPClient(tlsConf *tls.Config, limit *rate.Limiter) *http.Client {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		TLSClientConfig:       tlsConf,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
	var rt http.RoundTripper = tr
	if limit != nil {
		rt = limitedTransport{tr, limit}
	}
	// No request needs long: the largest is a manifest or a delta of a
	// few MB; a stalled body is then retried instead of hanging a sync.
	return &http.Client{Transport: rt, Timeout: 5 * time.Minute}
}

// limitedTransport reads every response body through the bandwidth limit.
type limitedTransport struct {
	rt    http.RoundTripper
	limit *rate.Limiter
}

func (t limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err == nil {
		resp.Body = limitedBody{rate.Reader{Ctx: req.Context(), R: resp.Body, L: t.limit}, resp.Body}
	}
	return resp, err
}

type limitedBody struct {
	io.Reader
	io.Closer
}

// Stats returns the bytes of stored (compressed) files received, the
// requests made and the failed attempts (which fell through to another
// location, if there was one).
func (s *StoreSource) Stats() (received, requests, failures int64) {
	return s.counts.Received.Load(), s.counts.Requests.Load(), s.counts.Failures.Load()
}

// Locations are the store's locations, in the order given.
func (s *StoreSource) Locations() []string { return s.locs }

// Close releases the store.
func (s *StoreSource) Close() error { return s.st.Close() }

// read names what was read in err.
func (s *StoreSource) read(what string, err error) error {
	if err == nil {
		return nil
	}
	if s.log != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Debug("store read failed", "what", what, "err", err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Manifest implements Source.
func (s *StoreSource) Manifest(ctx context.Context, d images.Digest) ([]byte, error) {
	b, err := s.st.ManifestBytes(ctx, d)
	err = s.read("manifest "+d.String(), err)
	if err == nil {
		s.mu.Lock()
		if s.image != d {
			s.image, s.indexMax = d, 0
		}
		if ii := s.indexes[d]; ii != nil && ii.failed {
			delete(s.indexes, d)
		}
		s.mu.Unlock()
	}
	return b, err
}

// Signature implements Source.
func (s *StoreSource) Signature(ctx context.Context, d images.Digest) ([]byte, error) {
	b, err := s.st.Signature(ctx, d)
	return b, s.read("signature of "+d.String(), err)
}

// Delta implements Source.
func (s *StoreSource) Delta(ctx context.Context, from, to images.Digest, old *delta.Base, size int64) ([]byte, error) {
	b, err := s.st.DeltaBase(ctx, from, to, old, size)
	return b, s.read("delta "+from.String()[:12]+"→"+to.String()[:12], err)
}

// limitIndex tells the source the most bytes the index of image d can
// take (store.IndexLimit of its manifest): the sync calls it once it has
// parsed the manifest (fetched or kept from an earlier sync), and the
// index is not fetched before.
func (s *StoreSource) limitIndex(d images.Digest, max int64) {
	s.mu.Lock()
	s.image, s.indexMax = d, max
	s.mu.Unlock()
}

// UseImage tells the source the image the sync reads, with its manifest
// however it arrived (fetched, kept, or rebuilt from a manifest delta):
// the index's bound (limitIndex), and each store's pack index of the
// image, without which a layout-v2 store finds none of its objects.
func (s *StoreSource) UseImage(d images.Digest, m *images.Manifest) {
	s.limitIndex(d, store.IndexLimit(m))
	s.st.WillRead(d, m)
}

// index returns the chunk index of the image whose manifest was fetched
// last (nil if there is none, its size is not known, or it cannot be
// read).
func (s *StoreSource) index(ctx context.Context) store.Index {
	s.mu.Lock()
	d, max := s.image, s.indexMax
	if d.IsZero() || max <= 0 {
		s.mu.Unlock()
		return nil
	}
	ii := s.indexes[d]
	if ii == nil {
		// One image at a time: an agent syncs to one image after another.
		clear(s.indexes)
		ii = &imageIndex{}
		s.indexes[d] = ii
	}
	s.mu.Unlock()
	ii.once.Do(func() {
		ii.ix, ii.err = s.st.IndexOf(ctx, d, max)
		ii.err = s.read("index of image "+d.String(), ii.err)
		if ii.err != nil && s.log != nil {
			s.log.Warn("no image index; fetching chunk lists file by file", "image", d, "err", ii.err)
		}
	})
	if ii.err != nil {
		s.mu.Lock()
		ii.failed = true // not for good: the next Manifest of d forgets it
		s.mu.Unlock()
	}
	return ii.ix
}

// Chunks implements ChunkSource: from the image's index when the content
// is in it, else from the store's chunk list of the content.
func (s *StoreSource) Chunks(ctx context.Context, sha images.Digest, size int64) ([]store.Chunk, error) {
	if size == 0 {
		return nil, nil
	}
	if ix := s.index(ctx); ix != nil {
		return ix.Chunks(sha, size), nil
	}
	cs, err := s.st.FileChunksOf(ctx, sha, size)
	return cs, s.read("chunks of "+sha.String(), err)
}

// Chunk implements ChunkSource.
func (s *StoreSource) Chunk(ctx context.Context, c store.Chunk) ([]byte, error) {
	b, err := s.st.GetChunk(ctx, c.ID)
	if err == nil && int64(len(b)) != c.Size {
		err = fmt.Errorf("chunk %s is %d bytes, its list says %d: %w", c.ID, len(b), c.Size, store.ErrCorrupt)
	}
	return b, s.read("chunk "+c.ID.String(), err)
}

// Object implements Source: the content's chunks, fetched and joined.
func (s *StoreSource) Object(ctx context.Context, sha images.Digest, size int64) ([]byte, error) {
	return assemble(ctx, s, sha, size, nil)
}

var _ ChunkSource = (*StoreSource)(nil)
