package pusher_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/localfleet"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher"
	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/pusher/signing"
)

// Attack 9: rollback by a hostile store. Images A (generation 100) and B
// (generation 200) are both validly signed as app:prod; the fleet runs B.
// The store answers the ref app:prod with A's digest: the controller,
// resolving the ref through it, asks the agent for A. The agent refuses
// (pusher.ErrOlder) and stays at B; the operator's explicit rollback
// (AllowRollback, from the authenticated controller) still works.
func TestAttackRollback(t *testing.T) {
	testenv.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := pusher.NewFixture(t)
	da, _, srcA := f.PublishTree(t, pusher.TreeA)
	db, _, srcB := f.PublishTree(t, pusher.TreeB())
	f.SignAs(t, da, f.Key(), signing.Statement{Ref: "app:prod", Generation: 100})
	f.SignAs(t, db, f.Key(), signing.Statement{Ref: "app:prod", Generation: 200})
	if err := f.Store().SetRef(ctx, "app:prod", db); err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(f.StoreDir()))
	hostile := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hostile && r.URL.Path == "/refs/app/prod" {
			w.Write([]byte(da.String() + "\n")) // the old ref
			return
		}
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()
	fleet, err := localfleet.Start(ctx, localfleet.Options{N: 1, Dir: t.TempDir(), Stores: []string{srv.URL},
		TrustedKeys: []string{f.WriteTrusted(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Stop()
	root := fleet.Agents[0].Root

	// `ingot push app:prod`: the controller resolves the ref in the store.
	push := func(allowRollback bool) *api.Result {
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
		reports, _ := fleet.Push(ctx, agentclient.PushOptions{Image: d, Ref: "app:prod", AllowRollback: allowRollback})
		if reports[0].Result == nil {
			t.Fatalf("push of %s: no result: %s", d, reports[0].Error)
		}
		return reports[0].Result
	}
	at := func(want string, src string) {
		t.Helper()
		if d := pusher.RsyncDiff(t, src, root, pusher.RsyncExcludes...); d != "" {
			t.Fatalf("the host is not at %s:\n%s", want, d)
		}
	}

	if r := push(false); !r.OK || r.Image != db.String() {
		t.Fatalf("honest push of app:prod: %+v", r)
	}
	at("B", srcB)

	hostile = true
	r := push(false)
	if r.OK || r.Image != da.String() || !strings.Contains(r.Error, pusher.ErrOlder.Error()) || !strings.Contains(r.Error, "generation 100") {
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
