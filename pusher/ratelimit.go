package pusher

import (
	"context"
	"io"
	"sync"
	"time"
)

// Limiter is a token bucket of bytes: Rate per second, bursts up to
// Burst. A nil *Limiter lets everything through.
type Limiter struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

// NewLimiter returns a bucket of rate bytes per second (nil for rate <= 0).
func NewLimiter(rate int64) *Limiter {
	if rate <= 0 {
		return nil
	}
	b := float64(rate) / 4 // a quarter second of burst
	if b < 64<<10 {
		b = 64 << 10
	}
	return &Limiter{rate: float64(rate), burst: b, tokens: b, last: time.Now()}
}

// WaitN blocks until n bytes may pass (n may exceed the burst: the debt is
// paid by waiting).
func (l *Limiter) WaitN(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	l.tokens += now.Sub(l.last).Seconds() * l.rate
	if l.tokens > l.burst {
		l.tokens = l.burst
	}
	l.last = now
	l.tokens -= float64(n)
	var wait time.Duration
	if l.tokens < 0 {
		wait = time.Duration(-l.tokens / l.rate * float64(time.Second))
	}
	l.mu.Unlock()
	if wait == 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// limitedReader charges every read to a limiter.
type limitedReader struct {
	ctx context.Context
	r   io.Reader
	l   *Limiter
}

func (r limitedReader) Read(p []byte) (int, error) {
	if len(p) > 32<<10 {
		p = p[:32<<10]
	}
	n, err := r.r.Read(p)
	if werr := r.l.WaitN(r.ctx, n); werr != nil && err == nil {
		err = werr
	}
	return n, err
}

// limitedWriter charges every write to a limiter.
type limitedWriter struct {
	ctx context.Context
	w   io.Writer
	l   *Limiter
}

func (w limitedWriter) Write(p []byte) (int, error) {
	if err := w.l.WaitN(w.ctx, len(p)); err != nil {
		return 0, err
	}
	return w.w.Write(p)
}

// ParseRate parses "10M", "500k", "1G", "123" (bytes per second; k, M
// and G are powers of 1024). "" and "0" mean unlimited.
func ParseRate(s string) (int64, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	mult := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	}
	num := s
	if mult != 1 {
		num = s[:len(s)-1]
	}
	var v int64
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, &rateError{s}
		}
		v = v*10 + int64(c-'0')
		if v > 1<<40 {
			return 0, &rateError{s}
		}
	}
	if num == "" || v > (1<<50)/mult {
		return 0, &rateError{s}
	}
	return v * mult, nil
}

type rateError struct{ s string }

func (e *rateError) Error() string {
	return "bad rate " + e.s + ": want bytes per second like 500k, 10M, 1G"
}
