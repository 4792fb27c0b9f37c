package pusher

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/internal/testenv"
)

// faultyStore serves a store directory with injected faults on objects
// and deltas.
type faultyStore struct {
	dir   string
	fault string // "corrupt", "truncate", "reset10"
	n     atomic.Int64
	hits  atomic.Int64
}

func (f *faultyStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	b, err := os.ReadFile(filepath.Join(f.dir, filepath.FromSlash(p)))
	if err != nil || strings.Contains(p, "..") {
		http.NotFound(w, r)
		return
	}
	content := strings.HasPrefix(p, "objects/") || strings.HasPrefix(p, "deltas/") || strings.HasPrefix(p, "packs/")
	k := f.n.Add(1)
	switch {
	case f.fault == "corrupt" && content:
		f.hits.Add(1)
		b = append([]byte(nil), b...)
		b[len(b)/2] ^= 0x40
		if strings.HasPrefix(p, "packs/") {
			// A range of a pack is read, not all of it: damage every range.
			for i := 0; i < len(b); i += 512 {
				b[i] ^= 0x40
			}
		}
	case f.fault == "truncate" && content:
		f.hits.Add(1)
		rec := httptest.NewRecorder()
		http.ServeContent(rec, r, "", time.Time{}, bytes.NewReader(b))
		for key, v := range rec.Header() {
			w.Header()[key] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes()[:rec.Body.Len()/2])
		hijackClose(w)
		return
	case f.fault == "reset10" && k%10 == 3:
		f.hits.Add(1)
		hijackClose(w)
		return
	}
	// Range requests (layout v2 packs) are answered as a static server does.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

func hijackClose(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST, not FIN
			}
			c.Close()
		}
	}
}

// deadURL is an address nothing listens on.
func deadURL(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestFaults(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	da, _, srcA := f.publishTree(t, treeA)
	tb := treeB()
	tb["usr/lib/huge"] = "big:6000000"
	db, _, srcB := f.publishTree(t, tb)
	if _, err := f.st.ComputeDeltas(ctx, da, db); err != nil {
		t.Fatal(err)
	}
	good := httptest.NewServer(http.FileServer(http.Dir(f.store)))
	defer good.Close()
	serve := func(fault string) (*faultyStore, string) {
		fs := &faultyStore{dir: f.store, fault: fault}
		s := httptest.NewServer(fs)
		t.Cleanup(s.Close)
		return fs, s.URL
	}

	cases := []struct {
		name   string
		urls   func() ([]string, *faultyStore)
		ok     bool
		errHas string
	}{
		{"corrupt first store, good second", func() ([]string, *faultyStore) {
			fs, u := serve("corrupt")
			return []string{u, good.URL}, fs
		}, true, ""},
		{"truncated bodies, good second", func() ([]string, *faultyStore) {
			fs, u := serve("truncate")
			return []string{u, good.URL}, fs
		}, true, ""},
		{"resets on 10% of requests", func() ([]string, *faultyStore) {
			fs, u := serve("reset10")
			return []string{u}, fs
		}, true, ""},
		{"dead first URL", func() ([]string, *faultyStore) {
			return []string{deadURL(t), good.URL}, nil
		}, true, ""},
		{"only a corrupt store", func() ([]string, *faultyStore) {
			fs, u := serve("corrupt")
			return []string{u}, fs
		}, false, "corrupt"},
		{"only dead URLs", func() ([]string, *faultyStore) {
			return []string{deadURL(t), deadURL(t)}, nil
		}, false, "refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := filepath.Join(tmpfsDir(t, "64m"), "root")
			os.MkdirAll(filepath.Join(root, "etc"), 0o755)
			os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("faulty\n"), 0o644)
			s := f.syncer(t, root)
			if res := s.Sync(ctx, da, f.source(t), SyncOptions{}); !res.OK {
				t.Fatal(res.Error)
			}
			urls, fs := c.urls()
			src := httpSource(t, urls...)
			res := s.Sync(ctx, db, src, SyncOptions{})
			if res.OK != c.ok {
				t.Fatalf("sync ok = %v, want %v: %s", res.OK, c.ok, res.Error)
			}
			if fs != nil && fs.hits.Load() == 0 {
				t.Fatal("no fault was injected")
			}
			want := srcB
			if !c.ok {
				want = srcA
				if !strings.Contains(res.Error, c.errHas) {
					t.Errorf("error %q does not say %q", res.Error, c.errHas)
				}
			}
			if d := rsyncDiff(t, want, root, rsyncExcludes...); d != "" {
				t.Fatalf("root is not at the expected image:\n%s", d)
			}
			if b, _ := os.ReadFile(filepath.Join(root, "etc/hostname")); string(b) != "faulty\n" {
				t.Fatalf("local path changed: %q", b)
			}
		})
	}

	t.Run("disk fills up", func(t *testing.T) {
		// A fits; B's extra 6 MB file does not.
		root := filepath.Join(tmpfsDir(t, "5m"), "root")
		os.MkdirAll(root, 0o755)
		s := f.syncer(t, root)
		if res := s.Sync(ctx, da, f.source(t), SyncOptions{}); !res.OK {
			t.Fatal(res.Error)
		}
		res := s.Sync(ctx, db, httpSource(t, good.URL), SyncOptions{})
		if res.OK || !strings.Contains(res.Error, "no space left") {
			t.Fatalf("sync on a full disk: ok=%v err=%q", res.OK, res.Error)
		}
		if d := rsyncDiff(t, srcA, root, rsyncExcludes...); d != "" {
			t.Fatalf("root is not at A after a failed sync:\n%s", d)
		}
		if _, err := os.Stat(filepath.Join(root, "var/lib/ingot-agent/journal.json")); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("a journal was left behind")
		}
	})
}
