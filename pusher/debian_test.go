package pusher

import (
	"context"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/testenv/debianpair"
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

// loadDebianPair builds (once, cached) the pair and a store with both
// (internal/testenv/debianpair, shared with the rollout's tests).
func loadDebianPair(t testing.TB) *debianPair {
	t.Helper()
	p := debianpair.Load(t)
	return &debianPair{dirA: p.DirA, dirB: p.DirB, store: p.Store, key: p.Key, keyFile: p.KeyFile, a: p.A, b: p.B}
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
