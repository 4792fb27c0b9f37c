package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Decorators wrap a Backend in one concern each, as restic's backends
// are wrapped: Retry (another try at the same location), Failover (the
// next location), Count (requests, bytes and failures). A backend does
// one thing per call; what to do about a failure is decided here, once.
//
// A read can carry a Check, the reader's verdict on the bytes it got
// (they decompress, they hash to their name): a Failover then treats bytes
// that fail it like any other failed read and takes them from the next
// location. Store passes one on every verified read (GetChecked).

// Check judges the bytes a read returned: nil when they are what was
// asked for, else an error (wrapping ErrCorrupt or ErrTooLarge).
type Check func(data []byte) error

// CheckedReader is a Backend that acts on a reader's verdict: Failover
// tries its other locations when check fails, Count counts the failure.
type CheckedReader interface {
	GetChecked(ctx context.Context, h Handle, max int64, check Check) ([]byte, error)
	GetRangeChecked(ctx context.Context, h Handle, off, n int64, check Check) ([]byte, error)
}

// GetChecked reads h from b (at most max bytes) and checks the bytes;
// a backend that can take them from elsewhere does when check fails.
func GetChecked(ctx context.Context, b Backend, h Handle, max int64, check Check) ([]byte, error) {
	if c, ok := b.(CheckedReader); ok {
		return c.GetChecked(ctx, h, max, check)
	}
	data, err := b.Get(ctx, h, max)
	if err == nil {
		err = check(data)
	}
	if err != nil {
		return nil, err
	}
	return data, nil
}

// GetRangeChecked is GetChecked for n bytes of h from off.
func GetRangeChecked(ctx context.Context, b Backend, h Handle, off, n int64, check Check) ([]byte, error) {
	if c, ok := b.(CheckedReader); ok {
		return c.GetRangeChecked(ctx, h, off, n, check)
	}
	data, err := b.GetRange(ctx, h, off, n)
	if err == nil {
		err = check(data)
	}
	if err != nil {
		return nil, err
	}
	return data, nil
}

// LayoutOf is the layout version b writes (LayoutV1 when it does not
// say: a read-only backend is read either way).
func LayoutOf(b Backend) int {
	if v, ok := b.(interface{ LayoutVersion() int }); ok {
		return v.LayoutVersion()
	}
	return LayoutV1
}

// Retry returns b retrying reads (Get, GetRange, Has) that fail with an
// error wrapping ErrTransient, up to n more times, the first after
// backoff and each after twice the wait before; the context ends a wait.
// Other errors, and writes, are returned as they are: a 404 or bytes that
// fail their check would be the same at the next try.
func Retry(b Backend, n int, backoff time.Duration) Backend {
	return &retrier{Backend: b, n: n, backoff: backoff}
}

type retrier struct {
	Backend
	n       int
	backoff time.Duration
}

func (r *retrier) LayoutVersion() int { return LayoutOf(r.Backend) }

// retry runs fn until it succeeds, fails for good or the tries are spent.
func (r *retrier) retry(ctx context.Context, fn func() error) error {
	wait := r.backoff
	for try := 0; ; try++ {
		err := fn()
		if err == nil || !errors.Is(err, ErrTransient) || try >= r.n {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait *= 2
	}
}

func (r *retrier) Get(ctx context.Context, h Handle, max int64) (data []byte, err error) {
	err = r.retry(ctx, func() error { data, err = r.Backend.Get(ctx, h, max); return err })
	return data, err
}

func (r *retrier) GetRange(ctx context.Context, h Handle, off, n int64) (data []byte, err error) {
	err = r.retry(ctx, func() error { data, err = r.Backend.GetRange(ctx, h, off, n); return err })
	return data, err
}

func (r *retrier) Has(ctx context.Context, h Handle) (ok bool, err error) {
	err = r.retry(ctx, func() error { ok, err = r.Backend.Has(ctx, h); return err })
	return ok, err
}

// Counts are what Count has seen: calls that read (Get, GetRange, Has),
// stored bytes received, and failed reads (any error but "not found",
// including bytes that failed their check).
type Counts struct {
	Requests, Received, Failures atomic.Int64
}

// Count returns b counting its reads into c (several backends may share
// one Counts).
func Count(b Backend, c *Counts) Backend { return &counter{Backend: b, c: c} }

type counter struct {
	Backend
	c *Counts
}

func (c *counter) LayoutVersion() int { return LayoutOf(c.Backend) }

func (c *counter) done(data []byte, err error) ([]byte, error) {
	c.c.Received.Add(int64(len(data)))
	if err != nil && !errors.Is(err, ErrNotFound) {
		c.c.Failures.Add(1)
	}
	return data, err
}

func (c *counter) Get(ctx context.Context, h Handle, max int64) ([]byte, error) {
	c.c.Requests.Add(1)
	return c.done(c.Backend.Get(ctx, h, max))
}

// GetRange counts a range read (a frame of a pack, layout v2) like a Get.
func (c *counter) GetRange(ctx context.Context, h Handle, off, n int64) ([]byte, error) {
	c.c.Requests.Add(1)
	return c.done(c.Backend.GetRange(ctx, h, off, n))
}

func (c *counter) Has(ctx context.Context, h Handle) (bool, error) {
	c.c.Requests.Add(1)
	ok, err := c.Backend.Has(ctx, h)
	_, err = c.done(nil, err)
	return ok, err
}

func (c *counter) GetChecked(ctx context.Context, h Handle, max int64, check Check) ([]byte, error) {
	c.c.Requests.Add(1)
	return c.done(GetChecked(ctx, c.Backend, h, max, check))
}

func (c *counter) GetRangeChecked(ctx context.Context, h Handle, off, n int64, check Check) ([]byte, error) {
	c.c.Requests.Add(1)
	return c.done(GetRangeChecked(ctx, c.Backend, h, off, n, check))
}

// Failover is a Backend over several locations of the same store
// (mirrors): a read goes first to the location that answered last, and
// on to the next by one rule (movesOn):
//
//   - a failure moves on: a network error, a 5xx, a truncated body (once
//     Retry has given up), bytes that fail the reader's Check, a file
//     larger than its kind may be;
//   - "not found" moves on too — a stale mirror must not stop a reader —
//     and is the answer only when every location that answered said so
//     (with the failures of the others named). The one exception is the
//     deltas (KindDelta): they are optional and absent for most contents,
//     so the first location's "not found" is final rather than a request
//     to every mirror for every file;
//   - an invalid name, and the context ending, are final.
//
// Writes (Put, Delete, Sync) go to the first location only: a Failover is
// for reading. List lists every location that can (each name once).
type Failover struct {
	bs   []Backend
	good atomic.Int32 // the location that answered last: tried first
}

// NewFailover returns a Failover over bs, tried in that order at first.
func NewFailover(bs ...Backend) *Failover { return &Failover{bs: bs} }

// movesOn is Failover's rule: whether a location's answer err to a read
// of h sends the read on to the next location.
func movesOn(h Handle, err error) bool {
	switch {
	case err == nil, errors.Is(err, ErrInvalidName), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.Is(err, ErrNotFound):
		return h.Kind != KindDelta
	}
	return true
}

// Location is the first location's, and the count of the others.
func (f *Failover) Location() string {
	if len(f.bs) > 1 {
		return fmt.Sprintf("%s (+%d mirrors)", f.bs[0].Location(), len(f.bs)-1)
	}
	return f.bs[0].Location()
}

// LayoutVersion is the first location's.
func (f *Failover) LayoutVersion() int { return LayoutOf(f.bs[0]) }

// each runs fn against the locations by the rule, and returns the answer.
func (f *Failover) each(ctx context.Context, h Handle, fn func(Backend) error) error {
	start := int(f.good.Load())
	var notFound error
	var failed []error
	for k := range f.bs {
		i := (start + k) % len(f.bs)
		err := fn(f.bs[i])
		if err == nil {
			f.good.Store(int32(i))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !movesOn(h, err) {
			if errors.Is(err, ErrNotFound) {
				f.good.Store(int32(i))
			}
			return err
		}
		if errors.Is(err, ErrNotFound) {
			notFound = err
			continue
		}
		if errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("corrupt data from %s: %w", f.bs[i].Location(), err)
		}
		failed = append(failed, err)
	}
	return failoverError(notFound, failed)
}

// failoverError is the answer after every location was tried: "not
// found" if any said so, naming the failures of the others. It wraps
// every answer (errors.Is finds a corrupt or too large file whichever
// location sent it).
func failoverError(notFound error, failed []error) error {
	msgs := make([]string, len(failed))
	for i, err := range failed {
		msgs[i] = err.Error()
	}
	switch {
	case notFound != nil && len(failed) == 0:
		return notFound
	case notFound != nil:
		return &allFailed{fmt.Sprintf("%v (and %d location(s) failed: %s)", notFound, len(failed), strings.Join(msgs, "; ")),
			append([]error{notFound}, failed...)}
	case len(failed) == 1:
		return failed[0]
	}
	return &allFailed{fmt.Sprintf("%d store locations: %s", len(failed), strings.Join(msgs, "; ")), failed}
}

// allFailed is the error of a read no location answered.
type allFailed struct {
	msg  string
	errs []error
}

func (e *allFailed) Error() string   { return e.msg }
func (e *allFailed) Unwrap() []error { return e.errs }

// Get reads h from the first location that has good bytes.
func (f *Failover) Get(ctx context.Context, h Handle, max int64) (data []byte, err error) {
	err = f.each(ctx, h, func(b Backend) (err error) { data, err = b.Get(ctx, h, max); return err })
	return data, err
}

// GetRange reads n bytes of h from off, from the first location that has them.
func (f *Failover) GetRange(ctx context.Context, h Handle, off, n int64) (data []byte, err error) {
	err = f.each(ctx, h, func(b Backend) (err error) { data, err = b.GetRange(ctx, h, off, n); return err })
	return data, err
}

// GetChecked is Get, moving on also from bytes that fail check.
func (f *Failover) GetChecked(ctx context.Context, h Handle, max int64, check Check) (data []byte, err error) {
	err = f.each(ctx, h, func(b Backend) (err error) { data, err = GetChecked(ctx, b, h, max, check); return err })
	return data, err
}

// GetRangeChecked is GetRange, moving on also from bytes that fail check.
func (f *Failover) GetRangeChecked(ctx context.Context, h Handle, off, n int64, check Check) (data []byte, err error) {
	err = f.each(ctx, h, func(b Backend) (err error) { data, err = GetRangeChecked(ctx, b, h, off, n, check); return err })
	return data, err
}

// Has reports whether a location holds h, asking them by the same rule
// ("false" is a "not found").
func (f *Failover) Has(ctx context.Context, h Handle) (bool, error) {
	err := f.each(ctx, h, func(b Backend) error {
		ok, err := b.Has(ctx, h)
		if err == nil && !ok {
			return fmt.Errorf("%s at %s: %w", h, b.Location(), ErrNotFound)
		}
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Put stores data at the first location.
func (f *Failover) Put(ctx context.Context, h Handle, data []byte, durable bool) error {
	return f.bs[0].Put(ctx, h, data, durable)
}

// Delete removes h at the first location.
func (f *Failover) Delete(ctx context.Context, h Handle) error { return f.bs[0].Delete(ctx, h) }

// Sync syncs the first location.
func (f *Failover) Sync(ctx context.Context) error { return f.bs[0].Sync(ctx) }

// List calls fn once for each name of kind k any location that can list
// holds; ErrNotSupported when none can, the first error when none could.
func (f *Failover) List(ctx context.Context, k Kind, fn func(name string) error) error {
	var mu sync.Mutex
	seen := map[string]bool{}
	var first, stop error
	listed := false
	for _, b := range f.bs {
		err := b.List(ctx, k, func(name string) error {
			mu.Lock()
			dup := seen[name]
			seen[name] = true
			mu.Unlock()
			if dup {
				return nil
			}
			if err := fn(name); err != nil {
				stop = err
				return err
			}
			return nil
		})
		switch {
		case stop != nil:
			return stop // fn's own error ends the listing
		case err == nil:
			listed = true
		case ctx.Err() != nil:
			return ctx.Err()
		case first == nil || errors.Is(first, ErrNotSupported):
			first = err
		}
	}
	if listed {
		return nil
	}
	return first
}
