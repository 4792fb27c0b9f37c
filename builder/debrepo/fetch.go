package debrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// ErrNotFound is returned (wrapped) when a URL answers 404 or a file://
// path does not exist.
var ErrNotFound = errors.New("not found")

// Client fetches repository files over http, https or file URLs.
type Client struct {
	// HTTP is the client for http and https URLs; nil means one with
	// sane timeouts.
	HTTP *http.Client
	// Now is the time signatures and Valid-Until are checked against;
	// nil means time.Now.
	Now func() time.Time
	// MaxIndexSize bounds one downloaded index file (InRelease or a
	// compressed Packages); 0 means 512 MiB.
	MaxIndexSize int64
	// Progress, if set, is told about each index file fetched.
	Progress func(url string, size int64)
	// SyncDelay is the first wait before reading a suite again when its
	// mirror looks mid-update; 0 means 2s.
	SyncDelay time.Duration
}

func (c *Client) syncDelay() time.Duration {
	if c.SyncDelay > 0 {
		return c.SyncDelay
	}
	return 2 * time.Second
}

var defaultHTTP = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
	},
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) maxSize() int64 {
	if c.MaxIndexSize > 0 {
		return c.MaxIndexSize
	}
	return 512 << 20
}

// open starts reading rawURL from offset (0 for all of it). It returns the
// body, whether the offset was honoured, and the total length if known
// (-1 otherwise).
func (c *Client) open(ctx context.Context, rawURL string, offset int64) (io.ReadCloser, bool, int64, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, false, 0, fmt.Errorf("%s: %w", rawURL, err)
	}
	switch u.Scheme {
	case "file":
		f, err := os.Open(u.Path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, false, 0, fmt.Errorf("%s: %w", rawURL, ErrNotFound)
			}
			return nil, false, 0, fmt.Errorf("%s: %w", rawURL, err)
		}
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			f.Close()
			return nil, false, 0, fmt.Errorf("%s: not a regular file", rawURL)
		}
		if offset > 0 {
			if _, err := f.Seek(offset, io.SeekStart); err != nil {
				f.Close()
				return nil, false, 0, fmt.Errorf("%s: %w", rawURL, err)
			}
		}
		return f, true, fi.Size(), nil
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return nil, false, 0, fmt.Errorf("%s: %w", rawURL, err)
		}
		if offset > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		}
		resp, err := c.http().Do(req)
		if err != nil {
			return nil, false, 0, fmt.Errorf("fetching %s: %w", rawURL, err)
		}
		switch {
		case resp.StatusCode == http.StatusPartialContent && offset > 0:
			var start, end, total int64
			if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &start, &end, &total); err != nil || start != offset {
				resp.Body.Close()
				return nil, false, 0, fmt.Errorf("fetching %s: bad Content-Range %q", rawURL, resp.Header.Get("Content-Range"))
			}
			return resp.Body, true, total, nil
		case resp.StatusCode == http.StatusOK:
			return resp.Body, offset == 0, resp.ContentLength, nil
		case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
			resp.Body.Close()
			return nil, false, 0, fmt.Errorf("%s: %w (HTTP %s)", rawURL, ErrNotFound, resp.Status)
		default:
			resp.Body.Close()
			return nil, false, 0, fmt.Errorf("fetching %s: HTTP %s", rawURL, resp.Status)
		}
	default:
		return nil, false, 0, fmt.Errorf("%s: unsupported URL scheme %q", rawURL, u.Scheme)
	}
}

// get reads all of rawURL, refusing more than limit bytes. A network
// error is retried twice; a 404 or an oversized file is not.
func (c *Client) get(ctx context.Context, rawURL string, limit int64) ([]byte, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var data []byte
		data, err = c.get1(ctx, rawURL, limit)
		var te *tooLarge
		if err == nil || errors.Is(err, ErrNotFound) || errors.As(err, &te) || ctx.Err() != nil {
			return data, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 500 * time.Millisecond):
		}
	}
	return nil, err
}

type tooLarge struct {
	url   string
	limit int64
}

func (e *tooLarge) Error() string { return fmt.Sprintf("%s: larger than %d bytes", e.url, e.limit) }

func (c *Client) get1(ctx context.Context, rawURL string, limit int64) ([]byte, error) {
	body, _, _, err := c.open(ctx, rawURL, 0)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", rawURL, err)
	}
	if int64(len(data)) > limit {
		return nil, &tooLarge{rawURL, limit}
	}
	if c.Progress != nil {
		c.Progress(rawURL, int64(len(data)))
	}
	return data, nil
}
