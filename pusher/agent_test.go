package pusher_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/internal/localfleet"
	"github.com/ingotfleet/ingot/internal/pki"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher"
	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/triggers"
)

func TestLocalFleetInProcess(t *testing.T) {
	testenv.RequireRoot(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f := pusher.NewFixture(t)
	da, _, srcA := f.PublishTree(t, pusher.TreeA)
	db, _, srcB := f.PublishTree(t, pusher.TreeB())
	srv := httptest.NewServer(http.FileServer(http.Dir(f.StoreDir())))
	defer srv.Close()
	fleet, err := localfleet.Start(ctx, localfleet.Options{N: 3, Dir: t.TempDir(), Stores: []string{srv.URL},
		TrustedKeys: []string{f.WriteTrusted(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Stop()
	if _, err := fleet.Push(ctx, agentclient.PushOptions{Image: da, Concurrency: 2}); err != nil {
		t.Fatal(err)
	}
	for _, a := range fleet.Agents {
		if d := pusher.RsyncDiff(t, srcA, a.Root, pusher.RsyncExcludes...); d != "" {
			t.Fatalf("%s not at A:\n%s", a.Name, d)
		}
	}
	reports, err := fleet.Push(ctx, agentclient.PushOptions{Image: db, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range fleet.Agents {
		if d := pusher.RsyncDiff(t, srcB, a.Root, pusher.RsyncExcludes...); d != "" {
			t.Fatalf("%s not at B:\n%s", a.Name, d)
		}
		if r := reports[i].Result; r == nil || len(r.Triggers) != 2 {
			t.Errorf("%s: triggers %+v", a.Name, r)
		}
	}
	// Status and metrics over mutual TLS.
	st, err := fleet.Client.Status(ctx, fleet.Hosts[0].Addr)
	if err != nil || st.Image != db.String() || st.Previous != da.String() || !st.Healthy {
		t.Fatalf("status: %+v %v", st, err)
	}
	resp, err := fleet.Client.HTTP.Get("https://" + fleet.Hosts[0].Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "ingot_agent_healthy 1") || !strings.Contains(string(body), "ingot_agent_syncs_total 2") {
		t.Errorf("metrics:\n%s", body)
	}
	// Rollback over the API, all hosts.
	if _, err := fleet.Push(ctx, agentclient.PushOptions{Rollback: true}); err != nil {
		t.Fatal(err)
	}
	for _, a := range fleet.Agents {
		if d := pusher.RsyncDiff(t, srcA, a.Root, pusher.RsyncExcludes...); d != "" {
			t.Fatalf("%s not back at A:\n%s", a.Name, d)
		}
	}
}

func TestAgentRefusesClients(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f := pusher.NewFixture(t)
	fleet, err := localfleet.Start(ctx, localfleet.Options{N: 1, Dir: t.TempDir(), TrustedKeys: []string{f.WriteTrusted(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Stop()
	addr := fleet.Hosts[0].Addr

	// Another CA's controller.
	other := t.TempDir()
	if err := pki.InitCA(other, "rogue"); err != nil {
		t.Fatal(err)
	}
	pki.IssueCert(other, other, "controller", pki.RoleController, nil, 0)
	rogue, err := pki.ClientTLS(filepath.Join(fleet.CA, "ca.pem"), filepath.Join(other, "controller.pem"), filepath.Join(other, "controller-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	// An agent's certificate used as a client (server-only usage).
	agentCert, err := pki.ClientTLS(filepath.Join(fleet.CA, "ca.pem"), fleet.Agents[0].Config.TLS.Cert, fleet.Agents[0].Config.TLS.Key)
	if err != nil {
		t.Fatal(err)
	}
	noCert := &tls.Config{RootCAs: rogue.RootCAs, MinVersion: tls.VersionTLS13}
	for name, conf := range map[string]*tls.Config{"no certificate": noCert, "other CA": rogue, "agent certificate": agentCert} {
		t.Run(name, func(t *testing.T) {
			c := agentclient.NewClient(conf)
			if _, err := c.Status(ctx, addr); err == nil {
				t.Fatal("agent accepted the client")
			}
			if _, err := c.Sync(ctx, addr, api.SyncRequest{Image: strings.Repeat("0", 64)}); err == nil {
				t.Fatal("agent accepted a sync from the client")
			}
		})
	}
	if _, err := fleet.Client.Status(ctx, addr); err != nil {
		t.Fatalf("fleet controller refused: %v", err)
	}
}

var _ = triggers.PhaseAfter
