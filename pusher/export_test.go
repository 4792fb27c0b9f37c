package pusher

import (
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/pusher/signing"
)

// The tests that drive agents through internal/localfleet and
// agentclient, which import this package, are external (package
// pusher_test); these names give them the package's test helpers.

type (
	Fixture  = fixture
	TestTree = tree
)

var (
	NewFixture       = newFixture
	TreeA            = treeA
	TreeB            = treeB
	RsyncDiff        = rsyncDiff
	RunRsyncDiff     = runRsyncDiff
	RsyncExcludes    = rsyncExcludes
	TmpfsDir         = tmpfsDir
	IngotBinary      = ingotBinary
	IngotCrashBinary = ingotCrashBinary
	AttackDir        = attackDir
	LoadDebianPair   = loadDebianPair
)

func (f *fixture) StoreDir() string        { return f.store }
func (f *fixture) Key() signing.PrivateKey { return f.key }
func (f *fixture) Store() *store.Store     { return f.st }

func (f *fixture) WriteTrusted(t testing.TB) string { return f.writeTrusted(t) }

func (f *fixture) Sign(t testing.TB, d images.Digest, key signing.PrivateKey) { f.sign(t, d, key) }

func (f *fixture) SignAs(t testing.TB, d images.Digest, key signing.PrivateKey, st signing.Statement) {
	f.signAs(t, d, key, st)
}

func (f *fixture) PublishTree(t testing.TB, tr tree) (images.Digest, *images.Manifest, string) {
	return f.publishTree(t, tr)
}

// HoldsState reports whether the sync keeps path p as the agent's state.
func (s *Syncer) HoldsState(p string) bool { return s.holdsState(p) }

// Pair accessors for the end-to-end test.
func (p *debianPair) A() images.Digest { return p.a }
func (p *debianPair) B() images.Digest { return p.b }
func (p *debianPair) DirA() string     { return p.dirA }
func (p *debianPair) DirB() string     { return p.dirB }
func (p *debianPair) StoreDir() string { return p.store }
func (p *debianPair) KeyFile() string  { return p.keyFile }
func (p *debianPair) Manifest(t testing.TB, d images.Digest) *images.Manifest {
	return p.manifest(t, d)
}
