package pusher

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkNoChangeSync is a sync of the Debian B image (~11,700 paths)
// on a host already at B: the daemon's steady state. "quick" answers from
// the quick check (quick.go, target ≤ 0.05 s); "full" is the full scan
// it replaces (the record removed before each sync).
func BenchmarkNoChangeSync(b *testing.B) {
	pair := loadDebianPair(b)
	srv := httptest.NewServer(http.FileServer(http.Dir(pair.store)))
	defer srv.Close()
	root := filepath.Join(b.TempDir(), "root")
	os.MkdirAll(root, 0o755)
	f := &fixture{key: pair.key}
	s := f.syncer(b, root)
	ctx := context.Background()
	src := httpSource(b, srv.URL)
	if res := s.Sync(ctx, pair.b, src, SyncOptions{}); !res.OK {
		b.Fatal(res.Error)
	}
	b.Run("walk", func(b *testing.B) {
		defer reportCPU(b)()
		for i := 0; i < b.N; i++ {
			if _, err := s.quickWalk(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, full := range []bool{false, true} {
		name := "quick"
		if full {
			name = "full"
		}
		b.Run(name, func(b *testing.B) {
			defer reportCPU(b)()
			for i := 0; i < b.N; i++ {
				if full {
					b.StopTimer()
					s.dropQuick()
					b.StartTimer()
				}
				res := s.Sync(ctx, pair.b, src, SyncOptions{})
				if !res.OK || res.Changed != 0 {
					b.Fatalf("no-change sync: %+v", res)
				}
			}
		})
	}
}

// reportCPU reports the process's CPU time (user and system) per op:
// on a loaded machine wall time says little.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru unix.Rusage
		unix.Getrusage(unix.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() {
		b.ReportMetric(float64((cpu()-start).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	}
}
