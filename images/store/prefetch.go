package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ingotfleet/ingot/images"
)

// Export reads files in manifest order, one at a time, while each needs
// fetching, decompressing and verifying: a prefetcher does that work ahead
// on the store's workers, holding at most prefetchBytes of content.
const (
	prefetchBytes   = 64 << 20
	prefetchMaxFile = 8 << 20 // larger files are streamed chunk by chunk
)

type fetched struct {
	sha  images.Digest
	size int64
	done chan struct{}
	data []byte
	err  error
}

type prefetcher struct {
	s      *Store
	ctx    context.Context
	cancel context.CancelFunc
	order  chan *fetched
	wg     sync.WaitGroup

	mu     sync.Mutex
	cond   *sync.Cond
	budget int64
}

// newPrefetcher starts fetching the content of every non-empty regular
// file of m, in manifest order: the order imagetar.Write opens them.
func (s *Store) newPrefetcher(ctx context.Context, m *images.Manifest) *prefetcher {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetcher{s: s, ctx: ctx, cancel: cancel, order: make(chan *fetched, 1024), budget: prefetchBytes}
	p.cond = sync.NewCond(&p.mu)
	work := make(chan *fetched, s.workers)
	for range s.workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for f := range work {
				f.data, f.err = s.readAll(ctx, f.sha, f.size)
				close(f.done)
			}
		}()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(work)
		defer close(p.order)
		for i := range m.Entries {
			e := &m.Entries[i]
			if e.Type != images.TypeFile || e.Size == 0 {
				continue
			}
			f := &fetched{sha: e.SHA256, size: e.Size, done: make(chan struct{})}
			if e.Size > prefetchMaxFile {
				close(f.done) // streamed when opened
			} else {
				if !p.take(e.Size) {
					return
				}
				select {
				case work <- f:
				case <-ctx.Done():
					return
				}
			}
			select {
			case p.order <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	return p
}

// take reserves n bytes of the budget, waiting for opened files to give
// theirs back; false when canceled.
func (p *prefetcher) take(n int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.budget < n && p.budget < prefetchBytes && p.ctx.Err() == nil {
		p.cond.Wait()
	}
	p.budget -= n
	return p.ctx.Err() == nil
}

func (p *prefetcher) give(n int64) {
	p.mu.Lock()
	p.budget += n
	p.mu.Unlock()
	p.cond.Broadcast()
}

// open returns the content of e, from the prefetched queue when it is next
// in line, else read directly.
func (p *prefetcher) open(ctx context.Context, e *images.Entry) (io.ReadCloser, error) {
	f, ok := <-p.order
	if !ok || f.sha != e.SHA256 {
		// Out of step (never for WriteTar): read directly.
		return p.s.OpenFile(ctx, e.SHA256)
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.size > prefetchMaxFile {
		return p.s.OpenFile(ctx, e.SHA256)
	}
	p.give(f.size)
	if f.err != nil {
		return nil, f.err
	}
	return &verifiedReader{Reader: bytes.NewReader(f.data), sha: f.sha}, nil
}

// verifiedReader holds content readAll has checked against its sha256
// (imagetar.VerifiedContent): WriteTar does not hash it a second time.
type verifiedReader struct {
	*bytes.Reader
	sha images.Digest
}

func (r *verifiedReader) Close() error                  { return nil }
func (r *verifiedReader) VerifiedSHA256() images.Digest { return r.sha }

func (p *prefetcher) close() {
	p.cancel()
	p.mu.Lock()
	p.cond.Broadcast()
	p.mu.Unlock()
	go func() {
		for range p.order {
		}
	}()
	p.wg.Wait()
}

// readAll returns the verified content of a file with hash sha and size.
func (s *Store) readAll(ctx context.Context, sha images.Digest, size int64) ([]byte, error) {
	if size <= MaxChunk {
		// Most files are one chunk, named by the file's hash: GetChunk
		// verifies it, no need to hash it twice. (A file of MaxChunk bytes
		// or fewer can still have several chunks.)
		b, err := s.GetChunk(ctx, sha)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	r, err := s.OpenFile(ctx, sha)
	if err != nil {
		return nil, err
	}
	// Exactly size bytes, then the end (where the reader checks the whole
	// content against sha): no buffer growing past the size.
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("content %s from %s: shorter than its %d bytes: %w", sha, s.b.Location(), size, ErrCorrupt)
		}
		return nil, err
	}
	var one [1]byte
	if n, err := io.ReadFull(r, one[:]); n > 0 {
		return nil, fmt.Errorf("content %s from %s: longer than its %d bytes: %w", sha, s.b.Location(), size, ErrCorrupt)
	} else if err != io.EOF {
		return nil, err
	}
	return buf, nil
}
