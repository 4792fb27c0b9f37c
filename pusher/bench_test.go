package pusher

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/pusher/fetch"
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

// BenchmarkSyncAB brings a host at the Debian A image to B (a real
// security update: ~1,000 changed files, ~5,000 mtime-only changes) from
// the store directory with deltas, the host a fresh copy of A each time.
// It reports the changed paths per second, the push's wall time, and the
// wall time of the first no-change check after it in a new Syncer (and
// how often the push left a quick-check record). INGOT_BENCH_STORE names
// another store holding the pair (bench/pusher.sh's, with its deltas;
// its signatures are not checked).
func BenchmarkSyncAB(b *testing.B) {
	pair := loadDebianPair(b)
	f := &fixture{key: pair.key}
	ctx := context.Background()
	dir, opts, a, bb := pair.store, SyncOptions{}, pair.a, pair.b
	if d := os.Getenv("INGOT_BENCH_STORE"); d != "" {
		dir, opts = d, SyncOptions{AllowUnsigned: true}
		st, err := store.Open(d)
		if err != nil {
			b.Fatal(err)
		}
		a, _ = st.Resolve(ctx, "debian:a")
		bb, _ = st.Resolve(ctx, "debian:b")
		st.Close()
	}
	src, err := fetch.OpenSource([]string{dir}, fetch.SourceOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	var files, seconds, first, records float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		root := filepath.Join(b.TempDir(), "root")
		if out, err := exec.Command("cp", "-a", pair.dirA, root).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v %s", err, out)
		}
		s := f.syncer(b, root)
		if res := s.Sync(ctx, a, src, opts); !res.OK {
			b.Fatal(res.Error)
		}
		exec.Command("sync").Run()
		b.StartTimer()
		res := s.Sync(ctx, bb, src, opts)
		if !res.OK || res.Changed < 1000 {
			b.Fatalf("sync to B: %+v", res)
		}
		files += float64(res.Changed)
		seconds += res.Seconds
		b.StopTimer()
		// The first no-change check after the push, as a one-shot agent
		// makes it (nothing in memory): quick when the push left a
		// quick-check record.
		if _, err := os.Stat(filepath.Join(s.StateDir, "quick.json")); err == nil {
			records++
		}
		t0 := time.Now()
		if res := f.syncer(b, root).Sync(ctx, bb, src, opts); !res.OK || res.Changed != 0 {
			b.Fatalf("no-change sync after the push: %+v", res)
		}
		first += time.Since(t0).Seconds()
		b.StartTimer()
	}
	b.ReportMetric(files/seconds, "changed-paths/s")
	b.ReportMetric(seconds/float64(b.N), "push-s/op")
	b.ReportMetric(first/float64(b.N), "first-check-s/op")
	b.ReportMetric(records/float64(b.N), "records/op")
}
