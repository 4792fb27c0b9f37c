package fleetcmd

// The pusher's steps of `ingot demo`: start three agents on loopback with
// temporary roots, push the demo image, change it, push again.

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/internal/localfleet"
	"github.com/ingotfleet/ingot/pusher/signing"
	"github.com/ingotfleet/ingot/triggers"
)

func init() {
	cli.RegisterDemoStep(cli.DemoStep{Rank: 500, Name: "push the image to three agents on loopback", Run: demoPush, When: nil})
	cli.RegisterDemoStep(cli.DemoStep{Rank: 600, Name: "change the image and push again", Run: demoPushAgain, When: nil})
}

// demoFleet is what the push steps share (set by demoPush).
var demoFleet struct {
	fleet  *localfleet.Fleet
	srv    *http.Server
	key    signing.PrivateKey
	stores string
}

// demoSign signs image dg as name:tag ref, generation gen.
func demoSign(ctx context.Context, d *cli.Demo, dg images.Digest, ref string, gen uint64) error {
	return d.Store.PutSignature(ctx, dg, []byte(signing.Sign(demoFleet.key, dg, signing.Statement{Ref: ref, Generation: gen})))
}

// demoPublish writes edits (path → content) into the demo's tree,
// imports it, and publishes it as ref, signed at generation gen.
func demoPublish(ctx context.Context, d *cli.Demo, edits map[string]string, ref string, gen uint64) (images.Digest, error) {
	for p, c := range edits {
		if err := os.WriteFile(filepath.Join(d.Root, p), []byte(c), 0o755); err != nil {
			return images.Digest{}, err
		}
	}
	img, _, err := d.Store.ImportDir(ctx, d.Root, images.WalkOptions{})
	if err != nil {
		return images.Digest{}, err
	}
	if err := d.Store.SetRef(ctx, ref, img); err != nil {
		return images.Digest{}, err
	}
	return img, demoSign(ctx, d, img, ref, gen)
}

func demoPush(ctx context.Context, d *cli.Demo) error {
	storeDir := filepath.Join(d.Dir, "store")
	k, err := signing.Generate("ingot demo")
	if err != nil {
		return err
	}
	demoFleet.key = k
	pub := filepath.Join(d.Dir, "release.pub")
	if err := os.WriteFile(pub, []byte(k.Public().String()+"\n"), 0o644); err != nil {
		return err
	}
	if err := demoSign(ctx, d, d.Digest, "demo:latest", 1); err != nil {
		return err
	}
	// The store, as static files over HTTP (what ingot serve, nginx or a CDN does).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	demoFleet.srv = &http.Server{Handler: http.FileServer(http.Dir(storeDir)), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = demoFleet.srv.Serve(ln) }() // ErrServerClosed once demoStop closes it
	demoFleet.stores = "http://" + ln.Addr().String()
	rules := []triggers.Rule{
		{Name: "greet", Paths: []string{"usr/bin/**"}, Command: []string{"sh", "-c", "echo programs changed: $(wc -l < \"$INGOT_CHANGED_FILE\")"}},
		{Name: "os-release", Paths: []string{"etc/os-release", "usr/lib/os-release"}, Command: []string{"true"}},
	}
	for i := range rules {
		if err := rules[i].Validate(); err != nil {
			return err
		}
	}
	f, err := localfleet.Start(ctx, localfleet.Options{N: 3, Dir: filepath.Join(d.Dir, "fleet"), Prefix: "demo",
		Stores: []string{demoFleet.stores}, TrustedKeys: []string{pub}, Triggers: rules})
	if err != nil {
		return err
	}
	demoFleet.fleet = f
	d.Say("signed the image; started 3 agents (mutual TLS, certificates from a fresh CA) with empty roots under %s", f.Dir)
	return demoPushTo(ctx, d, d.Digest.String())
}

func demoPushTo(ctx context.Context, d *cli.Demo, ref string) error {
	dg, err := d.Store.Resolve(ctx, ref)
	if err != nil {
		return err
	}
	reports, err := demoFleet.fleet.Push(ctx, agentclient.PushOptions{Image: dg, Concurrency: 3})
	if perr := printSummary(d.App.Stdout, reports); err == nil {
		err = perr
	}
	return err
}

func demoPushAgain(ctx context.Context, d *cli.Demo) error {
	// The fleet stays up for the rollout step, which stops it.
	if demoFleet.fleet == nil {
		return errors.New("no fleet: the push step did not run")
	}
	// Change the tree: a new version of a program, a new file, a removed one.
	edits := map[string]string{
		"usr/bin/hello":  "#!/bin/sh\necho hello from the second golden image\n",
		"etc/os-release": "NAME=\"ingot demo\"\nID=demo\nVERSION_ID=2\n",
		"usr/bin/new":    "#!/bin/sh\necho new in image 2\n",
	}
	if err := os.Remove(filepath.Join(d.Root, "usr/bin/passwd")); err != nil {
		return err
	}
	d2, err := demoPublish(ctx, d, edits, "demo:2", 2)
	if err != nil {
		return err
	}
	st, err := d.Store.ComputeDeltas(ctx, d.Digest, d2)
	if err != nil {
		return err
	}
	d.Say("image 2 is %s: %d changed files, %d sub-file deltas precomputed", d2, st.Files, st.Deltas)
	reports, err := demoFleet.fleet.Push(ctx, agentclient.PushOptions{Image: d2, Concurrency: 3})
	if perr := printSummary(d.App.Stdout, reports); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	r := reports[0].Result
	var fired []string
	for _, t := range r.Triggers {
		out := strings.TrimSpace(t.Output)
		if out != "" {
			out = " (" + out + ")"
		}
		fired = append(fired, t.Name+out)
	}
	d.Say("on %s: %d paths changed, triggers fired: %s", reports[0].Host.Name, r.Changed, strings.Join(fired, ", "))
	return nil
}

func demoStop() {
	if demoFleet.fleet != nil {
		demoFleet.fleet.Stop()
	}
	if demoFleet.srv != nil {
		_ = demoFleet.srv.Close() // the demo is over; its listener's close error tells nothing
	}
	demoFleet.fleet, demoFleet.srv = nil, nil
}
