package pusher

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ingotfleet/ingot/images"
)

// HTTPSource reads the store layout from one or more base URLs. Each
// request tries the URLs in order, starting from the last one that
// worked; on a network error, a 5xx, a truncated body or bytes that do not
// match their hash it retries with backoff and falls through to the next
// URL. A 404 from every URL is ErrNotFound.
type HTTPSource struct {
	URLs    []string
	Client  *http.Client
	Retries int           // attempts per URL (default 3)
	Backoff time.Duration // first backoff (default 100ms), doubled each retry
	Limit   *Limiter      // download bandwidth, shared by every request
	Log     *slog.Logger

	good     atomic.Int32 // index of the URL that last worked
	received atomic.Int64 // bytes of bodies read
	requests atomic.Int64
	failures atomic.Int64
}

// NewHTTPSource returns a source over urls with a keep-alive client.
func NewHTTPSource(urls []string, tlsConf *tls.Config) *HTTPSource {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
		TLSClientConfig:     tlsConf,
		DisableCompression:  true,
	}
	clean := make([]string, len(urls))
	for i, u := range urls {
		clean[i] = strings.TrimRight(u, "/")
	}
	return &HTTPSource{URLs: clean, Client: &http.Client{Transport: tr, Timeout: 10 * time.Minute}}
}

// Stats returns bytes received, requests made and failed attempts.
func (s *HTTPSource) Stats() (received, requests, failures int64) {
	return s.received.Load(), s.requests.Load(), s.failures.Load()
}

var errHTTPNotFound = errors.New("404")

func (s *HTTPSource) fetchOnce(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	s.requests.Add(1)
	resp, err := s.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, errHTTPNotFound
	case resp.StatusCode != http.StatusOK:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var body io.Reader = resp.Body
	if s.Limit != nil {
		body = limitedReader{ctx, resp.Body, s.Limit}
	}
	b, err := io.ReadAll(body)
	s.received.Add(int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading body: %w", url, err)
	}
	if resp.ContentLength >= 0 && int64(len(b)) != resp.ContentLength {
		return nil, fmt.Errorf("GET %s: truncated body (%d of %d bytes)", url, len(b), resp.ContentLength)
	}
	return b, nil
}

// get fetches path and checks it with check, trying every URL.
func (s *HTTPSource) get(ctx context.Context, path string, check func(url string, b []byte) ([]byte, error)) ([]byte, error) {
	if len(s.URLs) == 0 {
		return nil, errors.New("no store URLs configured")
	}
	retries := s.Retries
	if retries <= 0 {
		retries = 3
	}
	backoff := s.Backoff
	if backoff <= 0 {
		backoff = 100 * time.Millisecond
	}
	start := int(s.good.Load())
	notFound := 0
	var errs []string
	for k := range s.URLs {
		i := (start + k) % len(s.URLs)
		url := s.URLs[i] + "/" + path
		wait := backoff
		for attempt := 0; attempt < retries; attempt++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			b, err := s.fetchOnce(ctx, url)
			if errors.Is(err, errHTTPNotFound) {
				notFound++
				break
			}
			if err == nil {
				var out []byte
				out, err = check(url, b)
				if err == nil {
					s.good.Store(int32(i))
					return out, nil
				}
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			s.failures.Add(1)
			if s.Log != nil {
				s.Log.Debug("fetch failed", "url", url, "attempt", attempt+1, "err", err)
			}
			errs = append(errs, err.Error())
			if attempt+1 < retries {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return nil, ctx.Err()
				}
				wait *= 2
			}
		}
	}
	if notFound == len(s.URLs) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, path)
	}
	if len(errs) > 3 {
		errs = append(errs[:2], fmt.Sprintf("… %d more", len(errs)-3), errs[len(errs)-1])
	}
	return nil, fmt.Errorf("fetching %s from %d store URL(s): %s", path, len(s.URLs), strings.Join(errs, "; "))
}

// Manifest implements Source.
func (s *HTTPSource) Manifest(ctx context.Context, d images.Digest) ([]byte, error) {
	return manifestVia(ctx, s.get, d)
}

// Signature implements Source.
func (s *HTTPSource) Signature(ctx context.Context, d images.Digest) ([]byte, error) {
	return s.get(ctx, signaturePath(d), func(_ string, b []byte) ([]byte, error) { return b, nil })
}

// Object implements Source.
func (s *HTTPSource) Object(ctx context.Context, sha images.Digest, size int64) ([]byte, error) {
	return objectVia(ctx, s.get, sha, size)
}

// Delta implements Source.
func (s *HTTPSource) Delta(ctx context.Context, from, to images.Digest, old []byte) ([]byte, error) {
	return s.get(ctx, deltaPath(from, to), func(url string, b []byte) ([]byte, error) {
		return decodeDelta(url, b, from, to, old)
	})
}

var _ Source = (*HTTPSource)(nil)
var _ Source = DirSource{}
