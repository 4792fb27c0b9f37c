package pusher

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher/signing"
)

// An image put in an images/store store (manifest as an object, big files
// as chunk lists) syncs like one of the pusher's own layout.
func TestSyncFromImageStore(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	tr := tree{}
	for k, v := range treeA {
		tr[k] = v
	}
	tr["usr/lib/large"] = "big:3000000" // several chunks
	src := t.TempDir()
	tr.make(t, src)
	nodes, err := Scan(ctx, src, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, n := range nodes {
		if n.Type.String() != "file" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, n.Path))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.PutFile(ctx, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	m, err := NodesManifest(nodes)
	if err != nil {
		t.Fatal(err)
	}
	d, err := st.PutManifest(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if chunks, err := st.FileChunks(ctx, m.Lookup("usr/lib/large").SHA256); err != nil || len(chunks) < 2 {
		t.Fatalf("the large file is not chunked: %v %v", len(chunks), err)
	}
	key, _ := signing.Generate("t")
	w := StoreWriter{Dir: dir}
	w.PutSignature(d, []byte(signing.Sign(key, d)))
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	for name, source := range map[string]Source{"dir": DirSource{dir}, "http": NewHTTPSource([]string{srv.URL}, nil)} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			f := &fixture{key: key}
			s := f.syncer(t, root)
			if res := s.Sync(ctx, d, source, SyncOptions{}); !res.OK {
				t.Fatal(res.Error)
			}
			if diff := rsyncDiff(t, src, root, rsyncExcludes...); diff != "" {
				t.Fatalf("root differs:\n%s", diff)
			}
		})
	}
}
