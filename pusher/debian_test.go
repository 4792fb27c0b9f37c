package pusher

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher/signing"
)

// debianPair is a real image pair: A is Debian bookworm (minbase plus
// openssh-server, python3, curl), B the same packages with
// bookworm-updates and bookworm-security (a real security update).
type debianPair struct {
	dirA, dirB string // the trees (mmdebstrap --format=directory)
	store      string // a store holding both, signed, with deltas A → B
	key        signing.PrivateKey
	keyFile    string // public key file
	a, b       images.Digest
}

// cacheDir is where the heavy fixtures live between test runs.
func cacheDir() string {
	if d := os.Getenv("INGOT_TEST_CACHE"); d != "" {
		return filepath.Join(d, "pusher")
	}
	return "/var/cache/ingot-test/pusher"
}

// withLock runs fn holding an exclusive flock on name.
func withLock(t testing.TB, name string, fn func()) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	fn()
}

// loadDebianPair builds (once, cached) the pair and a store with both.
func loadDebianPair(t testing.TB) *debianPair {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "mmdebstrap", "mmdebstrap")
	dir := cacheDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &debianPair{dirA: filepath.Join(dir, "a"), dirB: filepath.Join(dir, "b"), store: filepath.Join(dir, "images-store")}
	withLock(t, filepath.Join(dir, "lock"), func() {
		script, _ := filepath.Abs("testdata/debian-pair.sh")
		cmd := exec.Command("sh", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PAIR_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building the Debian image pair: %v\n%s", err, out)
		}
		keyFile := filepath.Join(dir, "test.key")
		k, err := signing.LoadPrivateKey(keyFile)
		if err != nil {
			k, _ = signing.Generate("pusher tests")
			os.WriteFile(keyFile, []byte(k.String()+"\n"), 0o600)
		}
		p.key = k
		p.keyFile = filepath.Join(dir, "test.pub")
		os.WriteFile(p.keyFile, []byte(k.Public().String()+"\n"), 0o644)
		w, err := store.Open(p.store)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		ctx := context.Background()
		for _, x := range []struct {
			dir string
			d   *images.Digest
			ref string
		}{{p.dirA, &p.a, "debian:a"}, {p.dirB, &p.b, "debian:b"}} {
			// The digest is cached by ref; publishing again only rescans.
			if d, err := w.Ref(ctx, x.ref); err == nil {
				*x.d = d
				continue
			}
			d, _ := publishDir(t, w, x.dir)
			if err := w.SetRef(ctx, x.ref, d); err != nil {
				t.Fatal(err)
			}
			*x.d = d
		}
		for _, d := range []images.Digest{p.a, p.b} {
			sig, _ := w.Signature(ctx, d)
			if _, err := signing.Verify(d, sig, []signing.PublicKey{k.Public()}); err != nil {
				if err := w.PutSignature(ctx, d, []byte(signing.Sign(k, d, signing.Statement{Ref: "test:" + d.String()[:16], Generation: 1}))); err != nil {
					t.Fatal(err)
				}
			}
		}
		marker := filepath.Join(dir, "deltas-"+p.a.String()[:16]+"-"+p.b.String()[:16]+".done")
		if _, err := os.Stat(marker); err != nil {
			st, err := w.ComputeDeltas(ctx, p.a, p.b)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("deltas A → B: %+v", st)
			os.WriteFile(marker, nil, 0o644)
		}
	})
	return p
}

// manifest reads image d of the pair's store.
func (p *debianPair) manifest(t testing.TB, d images.Digest) *images.Manifest {
	t.Helper()
	st, err := store.Open(p.store)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := st.Manifest(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
