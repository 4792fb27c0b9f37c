package rate

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a token bucket of bytes, safe for concurrent use: a
// golang.org/x/time/rate.Limiter that lets a caller take more than the
// burst at once (the bucket goes into debt, paid by the caller's sleep). A
// nil *Limiter never waits.
type Limiter struct {
	lim   *rate.Limiter
	burst int
	now   func() time.Time
}

// minBurst keeps tiny rates from waking a sleeper for every few bytes.
const minBurst = 16 << 10

// New returns a bucket of bytesPerSecond with a burst of a tenth of a
// second (at least 16 KiB); nil when bytesPerSecond <= 0 (no limit).
func New(bytesPerSecond int64) *Limiter {
	if bytesPerSecond <= 0 {
		return nil
	}
	burst := max(int(bytesPerSecond/10), minBurst)
	return &Limiter{lim: rate.NewLimiter(rate.Limit(bytesPerSecond), burst), burst: burst, now: time.Now}
}

// Rate is the limit in bytes per second (0 for a nil Limiter).
func (l *Limiter) Rate() int64 {
	if l == nil {
		return 0
	}
	return int64(l.lim.Limit())
}

// Burst is the largest piece worth taking at once.
func (l *Limiter) Burst() int {
	if l == nil {
		return 1 << 30
	}
	return l.burst
}

// reserve takes n tokens and says how long to wait for the debt. The
// library refuses more than a burst in one reservation; n is taken in
// bursts, each going further into debt, and the wait is the last one's.
func (l *Limiter) reserve(n int) time.Duration {
	now := l.now()
	var d time.Duration
	for n > 0 {
		k := min(n, l.burst)
		d = l.lim.ReserveN(now, k).DelayFrom(now)
		n -= k
	}
	return d
}

// WaitN takes n bytes' worth of tokens, sleeping until the bucket is out
// of debt or ctx is done.
func (l *Limiter) WaitN(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	d := l.reserve(n)
	if d == 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Reader charges every read from R to L.
type Reader struct {
	Ctx context.Context
	R   io.Reader
	L   *Limiter
}

func (r Reader) Read(p []byte) (int, error) {
	if b := r.L.Burst(); len(p) > b {
		p = p[:b]
	}
	n, err := r.R.Read(p)
	if werr := r.L.WaitN(r.Ctx, n); werr != nil && err == nil {
		err = werr
	}
	return n, err
}

// Writer charges every write to W to L, in pieces of at most a burst.
type Writer struct {
	Ctx context.Context
	W   io.Writer
	L   *Limiter
}

func (w Writer) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		piece := p
		if b := w.L.Burst(); len(piece) > b {
			piece = piece[:b]
		}
		if err := w.L.WaitN(w.Ctx, len(piece)); err != nil {
			return n, err
		}
		m, err := w.W.Write(piece)
		n += m
		if err != nil {
			return n, err
		}
		p = p[m:]
	}
	return n, nil
}

// Parse reads a byte rate: a number with an optional K, M or G suffix
// (powers of 1024) and an optional "B", "iB" or "/s", e.g. "512K",
// "10M", "1.5G", "20MiB/s". "" and "0" mean unlimited (0).
func Parse(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	v := strings.TrimSuffix(s, "/s")
	v = strings.TrimSuffix(v, "B")
	v = strings.TrimSuffix(v, "i")
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
	if err != nil || !(f >= 0 && f*mult <= 1<<50) || v != strings.TrimSpace(v) {
		return 0, fmt.Errorf("rate %q: want bytes per second, a number with an optional K, M or G suffix (500K, 10M, 1.5G)", s)
	}
	return int64(f * mult), nil
}
