package pusher

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher/signing"
)

// Attack 9: rollback by a hostile store. Images A (generation 100) and B
// (generation 200) are both validly signed as app:prod; the fleet runs B.
// The store answers the ref app:prod with A's digest: the controller,
// resolving the ref through it, asks the agent for A. The agent refuses
// (ErrOlder) and stays at B; the operator's explicit rollback
// (AllowRollback, from the authenticated controller) still works.
func TestAttackRollback(t *testing.T) {
	testenv.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := newFixture(t)
	da, _, srcA := f.publishTree(t, treeA)
	db, _, srcB := f.publishTree(t, treeB())
	f.signAs(t, da, f.key, signing.Statement{Ref: "app:prod", Generation: 100})
	f.signAs(t, db, f.key, signing.Statement{Ref: "app:prod", Generation: 200})
	if err := f.st.SetRef(ctx, "app:prod", db); err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(f.store))
	hostile := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hostile && r.URL.Path == "/refs/app/prod" {
			w.Write([]byte(da.String() + "\n")) // the old ref
			return
		}
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()
	fleet, err := StartLocalFleet(ctx, LocalFleetOptions{N: 1, Dir: t.TempDir(), Stores: []string{srv.URL},
		TrustedKeys: []string{f.writeTrusted(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Stop()
	root := fleet.Agents[0].Root

	// `ingot push app:prod`: the controller resolves the ref in the store.
	push := func(allowRollback bool) *Result {
		t.Helper()
		st, err := store.OpenHTTP(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		d, err := st.Resolve(ctx, "app:prod")
		if err != nil {
			t.Fatal(err)
		}
		reports, _ := fleet.Push(ctx, PushOptions{Image: d, Ref: "app:prod", AllowRollback: allowRollback})
		if reports[0].Result == nil {
			t.Fatalf("push of %s: no result: %s", d, reports[0].Error)
		}
		return reports[0].Result
	}
	at := func(want string, src string) {
		t.Helper()
		if d := rsyncDiff(t, src, root, rsyncExcludes...); d != "" {
			t.Fatalf("the host is not at %s:\n%s", want, d)
		}
	}

	if r := push(false); !r.OK || r.Image != db.String() {
		t.Fatalf("honest push of app:prod: %+v", r)
	}
	at("B", srcB)

	hostile = true
	r := push(false)
	if r.OK || r.Image != da.String() || !strings.Contains(r.Error, ErrOlder.Error()) || !strings.Contains(r.Error, "generation 100") {
		t.Fatalf("push of app:prod answered with the old image: ok=%v image=%s error=%q; want it refused as older", r.OK, r.Image, r.Error)
	}
	at("B (the old image refused)", srcB)
	if st, _ := fleet.Client.Status(ctx, fleet.Hosts[0].Addr); st.Image != db.String() {
		t.Errorf("status after the refused push: image %s, want %s", st.Image, db)
	}

	// The operator's rollback is explicit, and goes through.
	if r := push(true); !r.OK {
		t.Fatalf("explicit rollback to A: %s", r.Error)
	}
	at("A (explicit rollback)", srcA)
	// From there, B is newer again.
	hostile = false
	if r := push(false); !r.OK {
		t.Fatalf("push of B after the rollback: %s", r.Error)
	}
	at("B", srcB)
}

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
