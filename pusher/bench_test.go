package pusher

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkNoChangeSync is a sync of the Debian B image (~11,700 paths)
// on a host already at B: the daemon's steady state (target < 0.1 s).
func BenchmarkNoChangeSync(b *testing.B) {
	pair := loadDebianPair(b)
	srv := httptest.NewServer(http.FileServer(http.Dir(pair.store)))
	defer srv.Close()
	root := filepath.Join(b.TempDir(), "root")
	os.MkdirAll(root, 0o755)
	f := &fixture{key: pair.key}
	s := f.syncer(b, root)
	ctx := context.Background()
	if res := s.Sync(ctx, pair.b, httpSource(b, srv.URL), SyncOptions{}); !res.OK {
		b.Fatal(res.Error)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res := s.Sync(ctx, pair.b, httpSource(b, srv.URL), SyncOptions{})
		if !res.OK || res.Changed != 0 {
			b.Fatalf("no-change sync: %+v", res)
		}
	}
}
