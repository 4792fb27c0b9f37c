package pusher

import (
	"context"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher/signing"
)

// The signature checks the agent makes before anything else.
func TestSyncSignatureStatements(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	da, _, _ := f.publishTree(t, treeA)
	db, _, _ := f.publishTree(t, treeB())
	root := t.TempDir()
	treeA.make(t, root)
	s := f.syncer(t, root)
	src := f.source(t)

	f.signAs(t, db, f.key, signing.Statement{Ref: "app:prod", Generation: 5})
	if r := s.Sync(ctx, db, src, SyncOptions{Ref: "app:prod"}); !r.OK {
		t.Fatalf("sync to B as app:prod: %s", r.Error)
	}
	g, err := s.LoadGenerations()
	if err != nil || g["app:prod"] != (Seen{5, db}) {
		t.Fatalf("generations after the sync: %+v, %v", g, err)
	}
	cases := []struct {
		name string
		sig  string
		ref  string
		want error
	}{
		{"signed under another name", signing.Sign(f.key, da, signing.Statement{Ref: "app:staging", Generation: 9}), "app:prod", ErrNotSignedAs},
		{"older, asked for by name", signing.Sign(f.key, da, signing.Statement{Ref: "app:prod", Generation: 4}), "app:prod", ErrOlder},
		{"older, asked for by digest", signing.Sign(f.key, da, signing.Statement{Ref: "app:prod", Generation: 4}), "", ErrOlder},
		{"first format", "ingot-signature-v1 " + f.key.Public().ID() + " " + strings.Repeat("A", 86) + "==\n", "app:prod", signing.ErrOldFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := f.st.PutSignature(ctx, da, []byte(c.sig)); err != nil {
				t.Fatal(err)
			}
			r := s.Sync(ctx, da, src, SyncOptions{Ref: c.ref})
			if r.OK || !strings.Contains(r.Error, c.want.Error()) {
				t.Fatalf("sync: ok=%v error=%q; want %q", r.OK, r.Error, c.want)
			}
			if st, _ := s.LoadState(); st.Image != db {
				t.Fatalf("the host moved to %s", st.Image)
			}
		})
	}
	// Equal generations are not older: two images of one release.
	f.signAs(t, da, f.key, signing.Statement{Ref: "app:prod", Generation: 5})
	if r := s.Sync(ctx, da, src, SyncOptions{Ref: "app:prod"}); !r.OK {
		t.Fatalf("sync to an image of the same generation: %s", r.Error)
	}
}
