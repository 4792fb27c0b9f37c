package rate

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"", 0, false},
		{"0", 0, false},
		{"123", 123, false},
		{"512K", 512 << 10, false},
		{"500k", 500 << 10, false},
		{"10M", 10 << 20, false},
		{"10MB/s", 10 << 20, false},
		{"20MiB/s", 20 << 20, false},
		{"1.5G", 3 << 29, false},
		{"1G", 1 << 30, false},
		{"-1", 0, true},
		{"x", 0, true},
		{"10T", 0, true},
		{"M", 0, true},
		{" 1", 0, true},
		{"NaN", 0, true},
		{"1e20", 0, true},
	} {
		got, err := Parse(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("Parse(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// fakeClock makes the bucket's arithmetic testable without sleeping.
func fakeClock(l *Limiter) *time.Time {
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	return &now
}

func TestReserve(t *testing.T) {
	l := New(1 << 20) // 1 MiB/s, burst 102.4 KiB
	now := fakeClock(l)
	if d := l.reserve(100 << 10); d != 0 {
		t.Fatalf("first 100 KiB waited %v, want 0 (burst)", d)
	}
	// The bucket is nearly empty: 1 MiB more costs about a second.
	d := l.reserve(1 << 20)
	if d < 990*time.Millisecond || d > 1010*time.Millisecond {
		t.Fatalf("1 MiB past the burst waits %v, want about 1s", d)
	}
	// After two seconds the debt is paid and the burst is back, capped.
	*now = now.Add(10 * time.Second)
	if d := l.reserve(int(l.burst)); d != 0 {
		t.Fatalf("after a long pause a burst waited %v", d)
	}
	if d := l.reserve(1 << 10); d == 0 {
		t.Fatal("tokens beyond the burst were kept")
	}
}

func TestNilAndCancel(t *testing.T) {
	var l *Limiter
	if err := l.WaitN(context.Background(), 1<<30); err != nil {
		t.Fatal(err)
	}
	if New(0) != nil || New(-5) != nil {
		t.Fatal("New(<=0) is not nil")
	}
	l = New(1024)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.WaitN(ctx, 1<<20); err == nil {
		t.Fatal("a canceled wait for a 1000-second debt returned nil")
	}
}

func TestReaderWriter(t *testing.T) {
	data := bytes.Repeat([]byte("ingot"), 50000)
	l := New(1 << 40) // effectively unlimited: checks pass-through
	got, err := io.ReadAll(Reader{context.Background(), bytes.NewReader(data), l})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Reader changed the data: %v", err)
	}
	var out strings.Builder
	n, err := Writer{context.Background(), &out, l}.Write(data)
	if err != nil || n != len(data) || out.String() != string(data) {
		t.Fatalf("Writer wrote %d, %v", n, err)
	}
}

// Rates come from config files and the API: Parse never panics, and what
// it accepts is a sane number of bytes per second.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"10M", "500k", "1.5G", "20MiB/s", "123", "", "0", "x", "1e300", "-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err == nil && (v < 0 || v > 1<<50) {
			t.Fatalf("Parse(%q) = %d", s, v)
		}
	})
}
