package pusher

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ingotfleet/ingot/internal/testenv"
)

// TestDeltaPacks: a host at A going to B rebuilds B's manifest from a
// delta against A's (kept from its last sync), reads the pair's small
// deltas in one request (the delta pack) and asks for no delta that does
// not exist; the root ends at B.
func TestDeltaPacks(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	ta, tb := tree{}, tree{}
	for k, v := range treeA {
		ta[k], tb[k] = v, v
	}
	ta["usr/share/doc"], tb["usr/share/doc"] = "dir", "dir"
	for i := 0; i < 40; i++ {
		var text strings.Builder
		for l := 0; l < 300; l++ {
			fmt.Fprintf(&text, "package %d (1.%d) stable; urgency=medium, fix %d\n", i, l, l*7919%10007)
		}
		p := fmt.Sprintf("usr/share/doc/changelog%02d", i)
		ta[p] = "file:" + text.String()
		tb[p] = "file:package (2.0) security update\n" + text.String()
	}
	da, _, _ := f.publishTree(t, ta)
	db, _, srcB := f.publishTree(t, tb)
	if st, err := f.st.ComputeDeltas(ctx, da, db); err != nil || st.Deltas < 40 {
		t.Fatalf("ComputeDeltas: %+v %v", st, err)
	}
	var mu sync.Mutex
	var deltaReqs, notFound, manifests int
	fs := http.FileServer(http.Dir(f.store))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if strings.HasPrefix(r.URL.Path, "/objects/") && strings.HasSuffix(r.URL.Path, db.String()) {
			manifests++
		}
		mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/deltas/") {
			mu.Lock()
			deltaReqs++
			if _, err := os.Stat(filepath.Join(f.store, r.URL.Path)); err != nil {
				notFound++
			}
			mu.Unlock()
		}
		fs.ServeHTTP(w, r)
	}))
	defer srv.Close()

	root := filepath.Join(t.TempDir(), "root")
	os.MkdirAll(root, 0o755)
	s := f.syncer(t, root)
	src := httpSource(t, srv.URL)
	if res := s.Sync(ctx, da, src, SyncOptions{}); !res.OK {
		t.Fatalf("sync to A: %s", res.Error)
	}
	mu.Lock()
	deltaReqs, notFound = 0, 0
	mu.Unlock()
	res := s.Sync(ctx, db, src, SyncOptions{})
	if !res.OK {
		t.Fatalf("sync to B: %s", res.Error)
	}
	if res.Deltas < 40 {
		t.Errorf("%d files from deltas, want every changed one (40)", res.Deltas)
	}
	// The manifest's delta, the pack and (all deltas being small)
	// nothing else; no 404; B's manifest not fetched whole.
	if deltaReqs != 2 || notFound != 0 || manifests != 0 {
		t.Errorf("%d requests for deltas, %d of them for deltas that do not exist, %d for B's whole manifest; want 2 (the manifest's delta and the pack), 0, 0", deltaReqs, notFound, manifests)
	}
	if d := rsyncDiff(t, srcB, root, rsyncExcludes...); d != "" {
		t.Fatalf("root differs from B:\n%s", d)
	}
}
