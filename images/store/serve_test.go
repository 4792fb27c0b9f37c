package store

import (
	"testing"
	"time"
)

// The egress bucket, on a fake clock: a burst goes at once, then the
// rate holds however the bytes are split.
func TestBucket(t *testing.T) {
	const rate = 1 << 20 // 1 MiB/s: burst 100 KiB (a tenth of a second)
	b := newBucket(rate)
	start := b.last
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	if d := b.reserve(at(0), int(b.burst)); d != 0 {
		t.Errorf("first burst waits %v, want 0", d)
	}
	// The next 1 MiB, in 16 pieces at the same instant: the last waits ~1 s.
	var d time.Duration
	for range 16 {
		d = b.reserve(at(0), 64<<10)
	}
	if d < 990*time.Millisecond || d > 1010*time.Millisecond {
		t.Errorf("1 MiB over the burst waits %v, want about 1s", d)
	}
	// After that second has passed the debt is paid; idle time refills at
	// most one burst.
	if d := b.reserve(at(1000), 0); d != 0 {
		t.Errorf("after the wait: %v, want 0", d)
	}
	if d := b.reserve(at(60000), int(b.burst)); d != 0 {
		t.Errorf("after a minute idle, one burst waits %v, want 0", d)
	}
	if d := b.reserve(at(60000), 1<<20); d < 990*time.Millisecond {
		t.Errorf("idle time must not bank more than a burst: 1 MiB more waits only %v", d)
	}
}
