package debianpair

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher/signing"
)

// Pair is the image pair: A is Debian (minbase plus openssh-server,
// python3, curl), B the same packages with the updates and security
// suites (a real security update).
type Pair struct {
	DirA, DirB string // the trees (mmdebstrap --format=directory)
	Store      string // a store holding both, signed, with deltas A → B
	Key        signing.PrivateKey
	KeyFile    string // the public key file
	A, B       images.Digest
}

// CacheDir is where the pair lives between test runs: $INGOT_TEST_CACHE/pusher,
// or /var/cache/ingot-test/pusher.
func CacheDir() string {
	if d := os.Getenv("INGOT_TEST_CACHE"); d != "" {
		return filepath.Join(d, "pusher")
	}
	return "/var/cache/ingot-test/pusher"
}

// script is pusher/testdata/debian-pair.sh, found from this file.
func script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "pusher", "testdata", "debian-pair.sh")
}

// Load builds the pair (once: later calls find it cached) and returns it.
func Load(t testing.TB) *Pair {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "mmdebstrap", "mmdebstrap")
	dir := CacheDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &Pair{DirA: filepath.Join(dir, "a"), DirB: filepath.Join(dir, "b"), Store: filepath.Join(dir, "images-store")}
	testenv.WithLock(t, dir, func() {
		cmd := exec.Command("sh", script())
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PAIR_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building the Debian image pair: %v\n%s", err, out)
		}
		keyFile := filepath.Join(dir, "test.key")
		k, err := signing.LoadPrivateKey(keyFile)
		if err != nil {
			if k, err = signing.Generate("pusher tests"); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(keyFile, []byte(k.String()+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		p.Key = k
		p.KeyFile = filepath.Join(dir, "test.pub")
		if err := os.WriteFile(p.KeyFile, []byte(k.Public().String()+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := store.Open(p.Store)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		ctx := context.Background()
		for _, x := range []struct {
			dir string
			d   *images.Digest
			ref string
		}{{p.DirA, &p.A, "debian:a"}, {p.DirB, &p.B, "debian:b"}} {
			// The digest is cached by ref; publishing again only rescans.
			if d, err := w.Ref(ctx, x.ref); err == nil {
				*x.d = d
				continue
			}
			d, _, err := w.ImportDir(ctx, x.dir, images.WalkOptions{NumericOwner: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.SetRef(ctx, x.ref, d); err != nil {
				t.Fatal(err)
			}
			*x.d = d
		}
		for _, d := range []images.Digest{p.A, p.B} {
			sig, _ := w.Signature(ctx, d)
			if _, err := signing.Verify(d, sig, []signing.PublicKey{k.Public()}); err != nil {
				if err := w.PutSignature(ctx, d, []byte(signing.Sign(k, d, signing.Statement{Ref: "test:" + d.String()[:16], Generation: 1}))); err != nil {
					t.Fatal(err)
				}
			}
		}
		marker := filepath.Join(dir, "deltas-"+p.A.String()[:16]+"-"+p.B.String()[:16]+".done")
		if _, err := os.Stat(marker); err != nil {
			st, err := w.ComputeDeltas(ctx, p.A, p.B)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("deltas A → B: %+v", st)
			if err := os.WriteFile(marker, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
	return p
}
