package fleetcmd

// The rollout step of `ingot demo`: a third image rolled out over the push
// steps' three agents in two colos and two sets, canary colo first, one
// host held back by a Blocked alert until it clears, a live display and a
// summary from the audit log.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/internal/localfleet"
	"github.com/ingotfleet/ingot/rollout"
	"github.com/ingotfleet/ingot/rollout/boltstore"
)

func init() {
	cli.RegisterDemoStep(cli.DemoStep{Rank: 700, Name: "roll image 3 out over the agents in two colos: canary colo first, a budget per set, a blocked host", Run: demoRollout, When: nil})
}

func demoRollout(ctx context.Context, d *cli.Demo) error {
	defer demoStop()
	if demoFleet.fleet == nil {
		return errors.New("no fleet: the push steps did not run")
	}
	fleet := demoFleet.fleet
	// Image 3: one more small change, so that the syncs are quick.
	edits := map[string]string{
		"usr/bin/hello":  "#!/bin/sh\necho hello from the third golden image\n",
		"etc/os-release": "NAME=\"ingot demo\"\nID=demo\nVERSION_ID=3\n",
	}
	img, err := demoPublish(ctx, d, edits, "demo:3", 3)
	if err != nil {
		return err
	}
	// A stand-in for Prometheus: demo-03 has a firing alert marking it
	// Blocked (say, someone is logged in over SSH) until it clears.
	var blocked atomic.Bool
	blocked.Store(true)
	promAddr, stopProm, err := demoAlerts(&blocked)
	if err != nil {
		return err
	}
	defer stopProm()
	plan, err := demoRolloutPlan(d, fleet, promAddr)
	if err != nil {
		return err
	}
	d.Say("image 3 is %s; inventory %s: colos ams (canary) and fra, sets web and cache (1 host of each down at a time)", img, filepath.Join(d.Dir, "inventory.yaml"))
	for i, s := range plan.Stages {
		d.Say("  stage %d: %s (bake %v)", i, strings.Join(s, " "), plan.Bake[i])
	}
	stateDir := filepath.Join(d.Dir, "rollout-state")
	st, err := boltstore.Open(stateDir + ".db")
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }() // every transition was committed when made
	if _, err := rollout.Begin(ctx, st, plan, img.String(), time.Now()); err != nil {
		return err
	}
	auditFile := filepath.Join(d.Dir, "rollout-audit.jsonl")
	af, err := openAppend(auditFile)
	if err != nil {
		return err
	}
	defer func() { _ = af.Close() }() // read back through the page cache
	disp := &rolloutDisplay{w: cli.NewOutput(d.App.Stdout), pl: plan}
	heldBack := 0
	ctl := &rollout.Controller{Plan: plan, Store: st, Agents: &rollout.PusherAgents{Client: fleet.Client},
		Indicators: (&rollout.AlertSource{Sources: plan.Pol.Indicators}).Read, Audit: af, OnTick: func(out rollout.Outcome, s *rollout.State) {
			disp.tick(out, s)
			// The alert clears after demo-03 waited, blocked, for ten
			// evaluations.
			for _, dc := range out.Decisions {
				if dc.Host == "demo-03" && dc.Action == rollout.Wait && strings.HasPrefix(dc.Reason, "blocked") {
					if heldBack++; heldBack == 1 {
						d.App.Printf("          demo-03 waits: %s\n", dc.Reason)
					}
				}
			}
			if heldBack >= 10 && blocked.Load() {
				blocked.Store(false)
				d.App.Println("          (the alert on demo-03 clears)")
			}
		}}
	if err := ctl.Run(ctx); err != nil {
		return err
	}
	if err := fleetAt(ctx, fleet, img.String()); err != nil {
		return err
	}
	d.Say("every agent reports image 3")
	return printAuditSummary(d.App.Stdout, auditFile)
}

// demoAlerts serves a stand-in for Prometheus's alerts API: demo-03 has a
// firing alert marking it Blocked while blocked holds.
func demoAlerts(blocked *atomic.Bool) (addr string, stop func(), err error) {
	prom := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		alerts := []any{}
		if blocked.Load() {
			alerts = append(alerts, map[string]any{"state": "firing",
				"labels":      map[string]string{"alertname": "SSHSessionOpen", "host": "demo-03"},
				"annotations": map[string]string{"ingot_indicator": "Blocked"}})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"alerts": alerts}})
	})}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go func() { _ = prom.Serve(pl) }() // ErrServerClosed once stopped
	return pl.Addr().String(), func() { _ = prom.Close() }, nil
}

// demoRolloutPlan writes the demo's inventory (the fleet's hosts in colos
// ams and fra, sets web and cache) and policy (canary colo first, alerts
// from promAddr) and loads them.
func demoRolloutPlan(d *cli.Demo, fleet *localfleet.Fleet, promAddr string) (*rollout.Plan, error) {
	var inv strings.Builder
	inv.WriteString("hosts:\n")
	for i, h := range fleet.Hosts {
		colo, set := "fra", []string{"web", "web", "cache"}[i]
		if i == 0 {
			colo = "ams"
		}
		fmt.Fprintf(&inv, "  - {name: %s, addr: %q, colo: %s, sets: [%s]}\n", h.Name, h.Addr, colo, set)
	}
	invFile := filepath.Join(d.Dir, "inventory.yaml")
	polFile := filepath.Join(d.Dir, "policy.yaml")
	pol := fmt.Sprintf(`interval: 200ms
canary: {colos: [ams], bake: 1s}
waves: [{size: 100%%}]
max_unavailable: 1
cooldown: 300ms
failures: {limit: 1, rollback: true}
indicators: {prometheus: "http://%s"}
`, promAddr)
	if err := writeFiles(map[string]string{invFile: inv.String(), polFile: pol}); err != nil {
		return nil, err
	}
	return rollout.LoadPlan(invFile, polFile)
}

// fleetAt checks that every agent of fleet reports image.
func fleetAt(ctx context.Context, fleet *localfleet.Fleet, image string) error {
	for _, a := range fleet.Agents {
		s, err := fleet.Client.Status(ctx, a.Addr)
		if err != nil {
			return err
		}
		if s.Image != image {
			return fmt.Errorf("%s is at %s after the rollout, not %s", a.Name, s.Image, image)
		}
	}
	return nil
}

func writeFiles(files map[string]string) error {
	for name, body := range files {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func openAppend(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}
