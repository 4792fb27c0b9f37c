package etcdstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/rollout/etcdstore/etcdtest"
)

// BenchmarkCommit measures fenced commits of one host record, and of ten
// at once, by one leader on a local single-node etcd (each commit is one
// transaction that etcd makes durable before answering).
func BenchmarkCommit(b *testing.B) {
	srv := etcdtest.Start(b)
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			s := open(b, srv.Endpoint(), newPrefix(), "bench")
			lead(b, s)
			record := []byte(`{"host":"web-0001","set":"web/eu1","state":"syncing","step":"wave-2","since":"2026-12-03T21:00:00Z"}`)
			puts := make([]map[string][]byte, b.N)
			for i := range puts {
				puts[i] = map[string][]byte{}
				for k := range n {
					puts[i][fmt.Sprintf("host/web-%04d", (i*n+k)%10000)] = record
				}
			}
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				if err := s.Commit(ctx, puts[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
		})
	}
}

// BenchmarkFailover measures how long a waiting controller takes to lead
// after the leader dies without resigning (its connection closed, the
// lease left to expire), and after a clean Resign. TTL: etcd's minimum,
// 2 s.
func BenchmarkFailover(b *testing.B) {
	srv := etcdtest.Start(b)
	for _, mode := range []string{"crash", "resign"} {
		b.Run(mode, func(b *testing.B) {
			var total time.Duration
			for range b.N {
				b.StopTimer()
				prefix := newPrefix()
				a := open(b, srv.Endpoint(), prefix, "a")
				s := open(b, srv.Endpoint(), prefix, "b")
				lead(b, a)
				done := make(chan error, 1)
				go func() { done <- s.Campaign(context.Background()) }()
				waitCandidates(b, s, 2)
				b.StartTimer()
				start := time.Now()
				if mode == "crash" {
					a.cli.Close() // no revoke: the lease must expire in etcd
				} else if err := a.Resign(context.Background()); err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				b.StopTimer()
				s.Close()
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/failover")
		})
	}
}
