package rollout_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/localfleet"
	"github.com/ingotfleet/ingot/internal/pki"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher/signing"
	"github.com/ingotfleet/ingot/rollout"
	"github.com/ingotfleet/ingot/rollout/api"
	"github.com/ingotfleet/ingot/rollout/boltstore"
	"github.com/ingotfleet/ingot/rollout/config"
	"github.com/ingotfleet/ingot/rollout/rollouttest"
)

// signedStore is a store whose images are signed with a fresh key,
// served over HTTP; pub is the key's public half in a file.
type signedStore struct {
	st       *store.Store
	key      signing.PrivateKey
	url, pub string
}

func newSignedStore(t *testing.T) *signedStore {
	t.Helper()
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
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	pub := filepath.Join(t.TempDir(), "trusted.pub")
	if err := os.WriteFile(pub, []byte(key.Public().String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &signedStore{st: st, key: key, url: srv.URL, pub: pub}
}

func (s *signedStore) publish(t *testing.T, files map[string]string) images.Digest {
	return publishTree(t, s.st, s.key, files)
}

// publishTree writes files under a new root, imports it into st and
// signs it.
func publishTree(t *testing.T, st *store.Store, key signing.PrivateKey, files map[string]string) images.Digest {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, _, err := st.ImportDir(context.Background(), root, images.WalkOptions{NumericOwner: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutSignature(context.Background(), d, []byte(signing.Sign(key, d, signing.Statement{Ref: "rollout-test:" + d.String()[len(d.String())-12:], Generation: 1}))); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRealAgents rolls an image out over four real agents (the pusher's
// local fleet) doing real syncs: the canary colo first, a host whose
// health gate fails is rolled back to the old image and freezes its set,
// an operator's retry over the API (mutual TLS) finishes the rollout, and
// every agent verifies at the new image. The API's metrics and FleetLock
// endpoints answer on the same listener.
func TestRealAgents(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	ss := newSignedStore(t)
	imgA := ss.publish(t, map[string]string{"etc/os-release": "A\n", "usr/bin/tool": "tool a\n"})
	imgB := ss.publish(t, map[string]string{"etc/os-release": "B\n", "usr/bin/tool": "tool b\n", "usr/share/new": "new\n"})
	fleet, err := localfleet.Start(ctx, localfleet.Options{N: 4, Dir: t.TempDir(), Stores: []string{ss.url}, TrustedKeys: []string{ss.pub}})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Stop()
	if _, err := fleet.Push(ctx, agentclient.PushOptions{Image: imgA, Concurrency: 4}); err != nil {
		t.Fatal(err)
	}
	// host-04's health gate fails until the test says otherwise.
	var healthy atomic.Bool
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/host-04") && !healthy.Load() {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
		}
	}))
	defer gate.Close()
	var inv strings.Builder
	inv.WriteString("hosts:\n")
	for i, h := range fleet.Hosts {
		colo, set := "c1", "s1"
		if i == 0 {
			colo = "c0"
		}
		if i >= 2 {
			colo, set = "c2", "s2"
		}
		fmt.Fprintf(&inv, "  - {name: %s, addr: %q, colo: %s, sets: [%s]}\n", h.Name, h.Addr, colo, set)
	}
	pol := fmt.Sprintf(`
interval: 100ms
canary: {colos: [c0], bake: 200ms}
max_unavailable: 1
cooldown: 100ms
failures: {limit: 3, rollback: true}
health:
  deadline: 1s
  gates: [{http: "%s/health/{host}"}]
`, gate.URL)
	pl, bs := beginRollout(ctx, t, inv.String(), pol, imgB.String())
	audit := &rollouttest.Log{}
	ctl := &rollout.Controller{Plan: pl, Store: bs, Agents: &rollout.PusherAgents{Client: fleet.Client},
		Health: rollout.Gates(pl.Pol, nil), Audit: audit}
	// The API, served with a certificate from the fleet CA, for
	// controller certificates only.
	cert, keyFile, err := pki.IssueCert(fleet.CA, t.TempDir(), "rollout-api", pki.RoleAgent, []string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := pki.ServerTLS(filepath.Join(fleet.CA, "ca.pem"), cert, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	apiSrv := &http.Server{Handler: api.New(ctl, nil)}
	go apiSrv.Serve(l)
	defer apiSrv.Close()
	base := "https://" + l.Addr().String()
	hc := fleet.Client.HTTP

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ctl.Run(rctx) }()
	// Wait for host-04 to fail and be rolled back.
	for !strings.Contains(audit.String(), `"action":"rolledback","host":"host-04"`) {
		time.Sleep(50 * time.Millisecond)
	}
	s, err := fleet.Client.Status(ctx, fleet.Hosts[3].Addr)
	if err != nil || s.Image != imgA.String() {
		t.Fatalf("host-04 after its failed health gate: %+v %v; want rolled back to %s", s, err, imgA)
	}
	// FleetLock on the same API: s2 is frozen but has its slot free.
	var status rollout.Status
	getJSON(t, hc, base+rollout.PathStatus, &status)
	if status.Frozen["s2"] != "host-04" || status.Failures != 1 {
		t.Fatalf("status after the failure: frozen %v, failures %d", status.Frozen, status.Failures)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/pre-reboot", strings.NewReader(`{"client_params":{"id":"host-04","group":"default"}}`))
	req.Header.Set("fleet-lock-protocol", "true")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("FleetLock pre-reboot: %s", resp.Status)
	}
	var holders []rollout.Holder
	getJSON(t, hc, base+"/v1/holders", &holders)
	if !strings.Contains(fmt.Sprint(holders), "host-04 s2 fleetlock") {
		t.Errorf("holders %+v lack host-04's FleetLock slot", holders)
	}
	req, _ = http.NewRequest(http.MethodPost, base+"/v1/steady-state", strings.NewReader(`{"client_params":{"id":"host-04","group":"default"}}`))
	req.Header.Set("fleet-lock-protocol", "true")
	if resp, err = hc.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("FleetLock steady-state: %v %v", resp, err)
	}
	resp.Body.Close()
	// The operator retries host-04, healthy now.
	healthy.Store(true)
	body, _ := json.Marshal(rollout.CommandRequest{Command: "retry", Host: "host-04"})
	if resp, err = hc.Post(base+rollout.PathCommand, "application/json", bytes.NewReader(body)); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("retry: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := <-done; err != nil {
		t.Fatalf("controller: %v", err)
	}
	for _, a := range fleet.Agents {
		s, err := fleet.Client.Status(ctx, a.Addr)
		if err != nil || s.Image != imgB.String() {
			t.Fatalf("%s: %+v %v; want at %s", a.Name, s, err, imgB)
		}
		if b, err := os.ReadFile(filepath.Join(a.Root, "usr/share/new")); err != nil || string(b) != "new\n" {
			t.Fatalf("%s: usr/share/new = %q %v", a.Name, b, err)
		}
	}
	// Canary first: host-01 finished before any other host started.
	evs, err := rollout.ParseAudit([]byte(audit.String()))
	if err != nil {
		t.Fatal(err)
	}
	fin, _ := first(evs, func(e rollout.Event) bool { return e.Action == rollout.Finish && e.Host == "host-01" })
	other, _ := first(evs, func(e rollout.Event) bool { return e.Action == rollout.Start && e.Host != "host-01" })
	if fin.Time.IsZero() || other.Time.Before(fin.Time) {
		t.Errorf("host-01 (canary) finished at %v, another host started at %v", fin.Time, other.Time)
	}
	checkBudgets(t, pl, evs, func(string, int) bool { return false })
	resp, err = hc.Get(base + rollout.PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`ingot_rollout_hosts{phase="done",set="s2"} 2`, `ingot_rollout_budget_max{set="s1"} 1`, `ingot_rollout_decisions_total{action="fail"} 1`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s:\n%s", want, m)
		}
	}
	// A client without a controller certificate is refused.
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if resp, err := plain.Get(base + rollout.PathStatus); err == nil {
		resp.Body.Close()
		t.Fatalf("the API answered a client without a certificate: %s", resp.Status)
	}
}

func getJSON(t *testing.T, hc *http.Client, url string, out any) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// beginRollout parses an inventory and a policy, opens a bolt store in a
// temporary directory (closed when the test ends) and begins the rollout
// of image on it.
func beginRollout(ctx context.Context, t *testing.T, inv, pol, image string) (*rollout.Plan, *boltstore.Store) {
	t.Helper()
	in, err := config.ParseInventory("inventory.yaml", []byte(inv))
	if err != nil {
		t.Fatal(err)
	}
	po, err := config.ParsePolicy("policy.yaml", []byte(pol), in)
	if err != nil {
		t.Fatal(err)
	}
	pl := rollout.NewPlan(in, po)
	bs, err := boltstore.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	if _, err := rollout.Begin(ctx, bs, pl, image, time.Now()); err != nil {
		t.Fatal(err)
	}
	return pl, bs
}
