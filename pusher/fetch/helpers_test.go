package fetch

import (
	"context"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/pusher/signing"
)

// The store fixture of these tests: the part of package pusher's test
// fixture a source needs (a store directory, and a key to sign with).

type fixture struct {
	store string
	key   signing.PrivateKey
	st    *store.Store
}

func newFixture(t testing.TB) *fixture {
	key, err := signing.Generate("test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &fixture{store: dir, key: key, st: st}
}

// sign replaces image d's signature file with one by key.
func (f *fixture) sign(t testing.TB, d images.Digest, key signing.PrivateKey) {
	t.Helper()
	st := signing.Statement{Ref: "test:" + d.String()[:16], Generation: 1}
	if err := f.st.PutSignature(context.Background(), d, []byte(signing.Sign(key, d, st))); err != nil {
		t.Fatal(err)
	}
}

// httpSource reads a store over HTTP with short backoffs.
func httpSource(t testing.TB, urls ...string) *StoreSource {
	t.Helper()
	src, err := OpenSource(urls, SourceOptions{Backoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// deadURL is a URL where nothing listens.
func deadURL(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// randomBytes is deterministic incompressible data.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
