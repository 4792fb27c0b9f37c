package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// HTTP is a read-only Backend on a store served by any static HTTP server
// (ingot serve, nginx, a CDN): plain GET and HEAD of the layout's paths at
// one base URL, exactly one request per call. It does not retry or fail
// over: Retry and Failover do, around it (HTTPMirrors puts them
// together). Errors worth another try wrap ErrTransient.
type HTTP struct {
	base   *url.URL
	client *http.Client
}

// HTTPOption configures an HTTP backend.
type HTTPOption func(*HTTP)

// WithHTTPClient sets the client (default: one with keep-alive and
// sensible timeouts).
func WithHTTPClient(c *http.Client) HTTPOption { return func(b *HTTP) { b.client = c } }

// Default retries of HTTPMirrors: a failed request is tried again four
// times, 200ms, 400ms, 800ms and 1.6s after.
const (
	DefaultRetries = 4
	DefaultBackoff = 200 * time.Millisecond
)

// NewHTTP returns a backend reading the store at base URL u.
func NewHTTP(u string, opts ...HTTPOption) (*HTTP, error) {
	p, err := url.Parse(u)
	if err != nil {
		return nil, fmt.Errorf("http store %q: %w", u, err)
	}
	if p.Scheme != "http" && p.Scheme != "https" {
		return nil, fmt.Errorf("http store %q: scheme must be http or https", u)
	}
	if !strings.HasSuffix(p.Path, "/") {
		p.Path += "/"
	}
	b := &HTTP{base: p}
	for _, o := range opts {
		o(b)
	}
	if b.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 16
		t.ResponseHeaderTimeout = 60 * time.Second
		b.client = &http.Client{Transport: t}
	}
	return b, nil
}

// HTTPMirrors is the backend of a store served at one or more base URLs
// (mirrors of the same store): each an HTTP backend with the default
// retries, failing over from one to the next.
func HTTPMirrors(urls []string, opts ...HTTPOption) (Backend, error) {
	if len(urls) == 0 {
		return nil, errors.New("http store: no URL")
	}
	var bs []Backend
	for _, u := range urls {
		h, err := NewHTTP(u, opts...)
		if err != nil {
			return nil, err
		}
		bs = append(bs, Retry(h, DefaultRetries, DefaultBackoff))
	}
	if len(bs) == 1 {
		return bs[0], nil
	}
	return NewFailover(bs...), nil
}

// Location is the base URL.
func (b *HTTP) Location() string { return b.base.String() }

// transient marks a failure worth another try: it wraps ErrTransient
// without changing the message.
type transient struct{ err error }

func (e transient) Error() string        { return e.err.Error() }
func (e transient) Unwrap() error        { return e.err }
func (e transient) Is(target error) bool { return target == ErrTransient }

// byteRange is a range request's first byte and length.
type byteRange struct{ off, n int64 }

// do runs one request (GET or HEAD) and returns the body (nil for HEAD),
// of at most max bytes; for the bytes of rng only when it is not nil: the
// answer must be 206 with exactly those bytes.
func (b *HTTP) do(ctx context.Context, method string, h Handle, max int64, rng *byteRange) ([]byte, error) {
	if err := h.Valid(); err != nil {
		return nil, err
	}
	u := b.base.ResolveReference(&url.URL{Path: h.Path()})
	data, err := b.once(ctx, method, u.String(), max, rng)
	var big bodyTooLarge
	switch {
	case err == nil:
		return data, nil
	case errors.As(err, &big):
		return nil, TooLarge(h, b.base.String(), string(big), max)
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("%s at %s: %w", h, b.base, err)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("%s %s: %w", method, u, err)
}

func (b *HTTP) once(ctx context.Context, method, u string, max int64, rng *byteRange) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	want := http.StatusOK
	if rng != nil {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", rng.off, rng.off+rng.n-1))
		// No transparent gzip: the range is of the file's own bytes.
		req.Header.Set("Accept-Encoding", "identity")
		want = http.StatusPartialContent
	}
	resp, err := b.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, transient{err}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // drained to reuse the connection, if it can be
		return nil, ErrNotFound
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // drained to reuse the connection, if it can be
		return nil, transient{fmt.Errorf("server said %s", resp.Status)}
	case rng != nil && resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return nil, fmt.Errorf("bytes %d-%d: server said %s (the range is not inside the file): %w", rng.off, rng.off+rng.n-1, resp.Status, ErrCorrupt)
	case rng != nil && resp.StatusCode == http.StatusOK:
		// The whole file instead of the range: refused unread (a pack is
		// megabytes, and a server that ignores Range cannot serve v2).
		return nil, fmt.Errorf("server said %s to a range request (it must answer 206 Partial Content: does it honour Range?)", resp.Status)
	case resp.StatusCode != want:
		return nil, fmt.Errorf("server said %s", resp.Status)
	}
	if rng != nil {
		wantCR := fmt.Sprintf("bytes %d-%d/", rng.off, rng.off+rng.n-1)
		if cr := resp.Header.Get("Content-Range"); !strings.HasPrefix(cr, wantCR) {
			return nil, fmt.Errorf("asked bytes %d-%d, server sent Content-Range %.100q: %w", rng.off, rng.off+rng.n-1, cr, ErrCorrupt)
		}
		// A body without a length (chunked) is read to at most n+1 bytes
		// below, and must be n.
		if resp.ContentLength >= 0 && resp.ContentLength != rng.n {
			return nil, fmt.Errorf("asked %d bytes, server sent Content-Length %d: %w", rng.n, resp.ContentLength, ErrCorrupt)
		}
	}
	if method == http.MethodHead {
		return nil, nil
	}
	// The body is read up to one byte past the limit, whatever the
	// server claims: a hostile server may send no length, or lie.
	if resp.ContentLength > max {
		return nil, bodyTooLarge(fmt.Sprintf("Content-Length says %d bytes,", resp.ContentLength))
	}
	hint := int64(4096)
	if resp.ContentLength >= 0 {
		hint = resp.ContentLength + 1 // the +1 sees a body longer than said
	}
	data, err := readBounded(resp.Body, hint, max+1)
	if int64(len(data)) > max {
		return nil, bodyTooLarge("the body is")
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Truncated body, reset connection: worth another try.
		return nil, transient{fmt.Errorf("reading body: %w", err)}
	}
	if resp.ContentLength >= 0 && int64(len(data)) != resp.ContentLength {
		return nil, transient{fmt.Errorf("body is %d bytes, Content-Length said %d", len(data), resp.ContentLength)}
	}
	if rng != nil && int64(len(data)) != rng.n {
		return nil, fmt.Errorf("asked %d bytes, the body is %d: %w", rng.n, len(data), ErrCorrupt)
	}
	return data, nil
}

// readBounded reads r to its end or to n bytes, whichever comes first,
// into a buffer that starts at hint bytes and doubles, never past n: the
// memory it takes is at most n (and half again while it grows).
func readBounded(r io.Reader, hint, n int64) ([]byte, error) {
	buf := make([]byte, 0, max(min(hint, n), 1))
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			bigger := make([]byte, len(buf), min(2*int64(cap(buf)), n))
			copy(bigger, buf)
			buf = bigger
		}
		k, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// Get fetches h, reading at most max bytes of its body.
func (b *HTTP) Get(ctx context.Context, h Handle, max int64) ([]byte, error) {
	return b.do(ctx, http.MethodGet, h, max, nil)
}

// GetRange fetches n bytes of h from off with a range request.
func (b *HTTP) GetRange(ctx context.Context, h Handle, off, n int64) ([]byte, error) {
	if off < 0 || n <= 0 {
		return nil, fmt.Errorf("%s: range of %d bytes at %d: %w", h, n, off, ErrCorrupt)
	}
	return b.do(ctx, http.MethodGet, h, n, &byteRange{off, n})
}

// bodyTooLarge is once's refusal of a body over the limit; do turns it
// into an error naming the handle and wrapping ErrTooLarge.
type bodyTooLarge string

func (e bodyTooLarge) Error() string { return string(e) + " over the limit" }

// Has asks with HEAD whether h exists.
func (b *HTTP) Has(ctx context.Context, h Handle) (bool, error) {
	_, err := b.do(ctx, http.MethodHead, h, 0, nil)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Put is refused: an HTTP store is read-only.
func (b *HTTP) Put(context.Context, Handle, []byte, bool) error {
	return fmt.Errorf("%s: %w", b.Location(), ErrReadOnly)
}

// Delete is refused: an HTTP store is read-only.
func (b *HTTP) Delete(context.Context, Handle) error {
	return fmt.Errorf("%s: %w", b.Location(), ErrReadOnly)
}

// List is not possible over plain HTTP (no directory listings).
func (b *HTTP) List(context.Context, Kind, func(string) error) error {
	return fmt.Errorf("listing %s: %w (plain HTTP has no directory listings)", b.Location(), ErrNotSupported)
}

// Sync has nothing to do.
func (b *HTTP) Sync(context.Context) error { return nil }
