package pusher

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/ingotfleet/ingot/internal/testenv"
)

// randomBytes is deterministic incompressible data.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// chunkTrees writes image A and B of a chunk test: B changes a few bytes
// in the middle of a large library, and renames a data file while
// appending to it (no path of B holds its old version).
func chunkTrees(t *testing.T) (rootA, rootB string) {
	lib := randomBytes(1, 3<<20)
	data := randomBytes(2, 1<<20)
	libB := bytes.Clone(lib)
	copy(libB[len(libB)/2:], "a security fix")
	rootA, rootB = t.TempDir(), t.TempDir()
	treeA.make(t, rootA)
	treeA.make(t, rootB)
	write := func(root, p string, b []byte) {
		if err := os.WriteFile(filepath.Join(root, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(rootA, "usr/lib/libbig.so", lib)
	write(rootA, "usr/share/data.v1", data)
	write(rootB, "usr/lib/libbig.so", libB)
	write(rootB, "usr/share/data.v2", append(bytes.Clone(data), "appended in v2"...))
	return rootA, rootB
}

// A host at A syncing to B over HTTP fetches only the chunks it lacks:
// the library's changed chunk, not its 3 MiB; the renamed file's old
// chunks come from its old path. With deltas, less still.
func TestSyncFetchesOnlyMissingChunks(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	rootA, rootB := chunkTrees(t)
	da, _ := f.publish(t, rootA)
	db, _ := f.publish(t, rootB)
	srv := httptest.NewServer(http.FileServer(http.Dir(f.store)))
	defer srv.Close()

	host := func() *Syncer {
		root := filepath.Join(t.TempDir(), "root")
		os.MkdirAll(root, 0o755)
		s := f.syncer(t, root)
		if res := s.Sync(ctx, da, httpSource(t, srv.URL), SyncOptions{}); !res.OK {
			t.Fatal(res.Error)
		}
		return s
	}

	s := host()
	res := s.Sync(ctx, db, httpSource(t, srv.URL), SyncOptions{})
	if !res.OK {
		t.Fatal(res.Error)
	}
	if d := rsyncDiff(t, rootB, s.Root, rsyncExcludes...); d != "" {
		t.Fatalf("root is not at B:\n%s", d)
	}
	t.Logf("chunks: %+v", res)
	// 4 MiB of changed files; the host lacks one chunk of the library and
	// the tail of the data file, and a few small files.
	if res.ReusedBytes < 3<<20 || res.FetchedChunks > 6 || res.Fetched > 600<<10 {
		t.Fatalf("reused %d bytes in %d chunks, fetched %d chunks, %d bytes on the wire: want ≥ 3 MiB reused, ≤ 6 chunks, ≤ 600 KiB",
			res.ReusedBytes, res.ReusedChunks, res.FetchedChunks, res.Fetched)
	}
	chunkBytes := res.Fetched

	// Deltas, once per image pair: a second host at A fetches those.
	st, err := f.st.ComputeDeltas(ctx, da, db)
	if err != nil || st.Deltas == 0 {
		t.Fatalf("ComputeDeltas = %+v, %v", st, err)
	}
	s = host()
	res = s.Sync(ctx, db, httpSource(t, srv.URL), SyncOptions{})
	if !res.OK {
		t.Fatal(res.Error)
	}
	if d := rsyncDiff(t, rootB, s.Root, rsyncExcludes...); d != "" {
		t.Fatalf("root is not at B:\n%s", d)
	}
	t.Logf("deltas: %+v", res)
	// In a layout v2 store the chunks B added sit together in one frame,
	// which the host fetches for the data file's tail anyway: the delta
	// of the library saves nothing here, but must cost no more than its
	// own bytes and the framing of the delta pack that carries them (a
	// header and 69 bytes per entry).
	const packFraming = 512
	if res.Deltas == 0 || res.Fetched > chunkBytes+st.DeltaBytes+packFraming {
		t.Fatalf("with deltas: %d deltas, %d bytes on the wire; want deltas and at most %d chunk bytes + %d delta bytes + %d of pack framing", res.Deltas, res.Fetched, chunkBytes, st.DeltaBytes, packFraming)
	}

	// A host with nothing fetches everything, chunk by chunk.
	root := filepath.Join(t.TempDir(), "root")
	os.MkdirAll(root, 0o755)
	res = f.syncer(t, root).Sync(ctx, db, f.source(t), SyncOptions{})
	if !res.OK || res.ReusedChunks != 0 || res.FetchedChunks < 50 {
		t.Fatalf("sync onto an empty root: %+v", res)
	}
}
