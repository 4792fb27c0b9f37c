package fleetcmd

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/internal/pki"
	"github.com/ingotfleet/ingot/rollout"
	"github.com/ingotfleet/ingot/rollout/api"
	"github.com/ingotfleet/ingot/rollout/boltstore"
	"github.com/ingotfleet/ingot/rollout/etcdstore"
)

func init() { cli.Register(newRolloutCommand) }

// errHalted: the rollout stopped short (halted or aborted); exit code 1.
var errHalted = fmt.Errorf("rollout did not complete: %w", cli.ErrNegative)

func newRolloutCommand(a *cli.App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Take an image to a fleet: canary colo, waves, per-set budgets, indicators, automatic halt",
		Long: `rollout runs a controller that takes an image to every host of an
inventory: the canary colos first, each stage followed by a bake time, then
waves; never more hosts of a set unavailable than its budget; hosts that
alerts mark Blocked or Unavailable wait; a failing host freezes its set and
past the failure limit the rollout halts. The other subcommands talk to a
running controller's API (mutual TLS, a controller certificate).`,
	}
	cmd.AddCommand(newRolloutStart(a), newRolloutStatus(a), newRolloutPlan(a))
	for _, c := range []struct{ name, short string }{
		{"pause", "Stop starting hosts (those at work finish)"},
		{"resume", "Start hosts again after a pause"},
		{"abort", "Stop the rollout for good; the controller exits once hosts at work finish"},
	} {
		cmd.AddCommand(newRolloutCommandCmd(a, c.name, c.short, false))
	}
	cmd.AddCommand(newRolloutCommandCmd(a, "skip", "Leave HOST out of the rollout (unfreezes a set it froze)", true))
	cmd.AddCommand(newRolloutCommandCmd(a, "retry", "Try a failed or skipped HOST again (unfreezes its set; clears a halt once under the limit)", true))
	return cmd
}

// apiFlags are how a command reaches a controller's API.
type apiFlags struct{ addr, ca, cert, key string }

func (f *apiFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.addr, "api", "127.0.0.1:7444", "the controller's API address")
	cmd.Flags().StringVar(&f.ca, "ca", "ca/ca.pem", "the fleet CA certificate")
	cmd.Flags().StringVar(&f.cert, "cert", "ca/controller.pem", "a controller certificate")
	cmd.Flags().StringVar(&f.key, "key", "ca/controller-key.pem", "its key")
}

func (f *apiFlags) call(ctx context.Context, method, path string, body, out any) error {
	conf, err := pki.ClientTLS(f.ca, f.cert, f.key)
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 30 * time.Second}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+f.addr+path, rd)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the controller: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return fmt.Errorf("controller: %s", e.Error)
	}
	return json.Unmarshal(b, out)
}

// rolloutStartOptions are the flags of `ingot rollout start`.
type rolloutStartOptions struct {
	invFile, polFile, stateDir, etcdURL, etcdPrefix string
	etcdCA, etcdCert, etcdKey                       string
	listen, apiCert, apiKey, auditFile              string
	agentCA, agentCert, agentKey                    string
	stores                                          []string
	asJSON                                          bool
}

func (o *rolloutStartOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.invFile, "inventory", "", "inventory file (YAML; or a hosts file)")
	f.StringVar(&o.polFile, "policy", "", "policy file (YAML)")
	f.StringVar(&o.stateDir, "state", "rollout-state", "directory of the state file (without --etcd) and the audit log")
	f.StringVar(&o.etcdURL, "etcd", "", "etcd client URLs (comma-separated): keep the state there and act only while leader")
	f.StringVar(&o.etcdPrefix, "etcd-prefix", "/ingot/rollout", "key prefix of this rollout in etcd")
	f.StringVar(&o.etcdCA, "etcd-cacert", "", "PEM file of the CA that signed etcd's server certificate")
	f.StringVar(&o.etcdCert, "etcd-cert", "", "client certificate for etcd (with --client-cert-auth)")
	f.StringVar(&o.etcdKey, "etcd-key", "", "its key")
	f.StringVar(&o.auditFile, "audit", "", "audit log (default STATE/audit.jsonl)")
	f.StringVar(&o.listen, "listen", "", "serve the API (mutual TLS) on this address, e.g. 127.0.0.1:7444")
	f.StringVar(&o.apiCert, "api-cert", "ca/rollout-api.pem", "the API's serving certificate")
	f.StringVar(&o.apiKey, "api-key", "ca/rollout-api-key.pem", "its key")
	f.StringVar(&o.agentCA, "ca", "ca/ca.pem", "the fleet CA certificate")
	f.StringVar(&o.agentCert, "cert", "ca/controller.pem", "this controller's certificate, to drive agents")
	f.StringVar(&o.agentKey, "key", "ca/controller-key.pem", "its key")
	f.StringSliceVar(&o.stores, "store-url", nil, "store URLs the agents fetch from (default: each agent's)")
	f.BoolVar(&o.asJSON, "json", false, "print each evaluation as a JSON line instead of the live display")
}

func newRolloutStart(a *cli.App) *cobra.Command {
	var o rolloutStartOptions
	cmd := &cobra.Command{
		Use:   "start IMAGE --inventory FILE --policy FILE",
		Short: "Run the controller that rolls IMAGE out, until the rollout completes",
		Long: `start records a rollout of IMAGE (a digest, a unique prefix of one, or
NAME:TAG in the store) and runs its controller in the foreground until every
host is done or skipped. Each transition is committed to the state store
before it is acted on, so a controller killed at any point and started again
with the same arguments resumes where it stopped and never syncs a host
twice for one step.

State lives in a bbolt file under --state, or with --etcd in etcd, where
several controllers elect a leader and only the leader acts. Every decision
goes to the audit log (JSON lines). The API (--listen) serves status, the
plan, pause/resume/abort/skip/retry, /metrics and FleetLock, over mutual TLS:
it needs a serving certificate (ingot ca issue NAME --role agent --host H)
and accepts controller certificates.

Exit status: 0 when the rollout completed, 1 when it was aborted.`,
		Args: cli.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRolloutStart(cmd.Context(), a, &o, args[0])
		},
	}
	o.addFlags(cmd)
	return cmd
}

// runRolloutStart records the rollout of ref and runs its controller
// until the rollout completes (nil) or is halted (errHalted).
func runRolloutStart(ctx context.Context, a *cli.App, o *rolloutStartOptions, ref string) error {
	if o.invFile == "" || o.polFile == "" {
		return cli.UsageError{Err: errors.New("--inventory and --policy are required")}
	}
	pl, err := rollout.LoadPlan(o.invFile, o.polFile)
	if err != nil {
		return err
	}
	d, err := resolvePushImage(ctx, a, ref)
	if err != nil {
		return err
	}
	image := d.String()
	if err := os.MkdirAll(o.stateDir, 0o755); err != nil {
		return err
	}
	store, elector, err := o.openState(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = store.Close() }() // every transition was committed when made
	if elector != nil {
		cli.NewOutput(a.Stderr).Println("campaigning for leadership...")
		if err := elector.Campaign(ctx); err != nil {
			return err
		}
	}
	if _, err := rollout.Begin(ctx, store, pl, image, time.Now()); err != nil {
		return err
	}
	auditFile := o.auditFile
	if auditFile == "" {
		auditFile = filepath.Join(o.stateDir, "audit.jsonl")
	}
	af, err := os.OpenFile(auditFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = af.Close() }() // synced below before it is read back
	conf, err := pki.ClientTLS(o.agentCA, o.agentCert, o.agentKey)
	if err != nil {
		return err
	}
	agents := &rollout.PusherAgents{Client: agentclient.NewClient(conf), Stores: o.stores}
	health := rollout.Gates(pl.Pol, nil)
	src := &rollout.AlertSource{Sources: pl.Pol.Indicators}
	disp := &rolloutDisplay{w: cli.NewOutput(a.Stderr), pl: pl, json: o.asJSON}
	ctl := &rollout.Controller{Plan: pl, Store: store, Elector: elector, Agents: agents, Health: health,
		Indicators: src.Read, Audit: af, Log: a.Log, OnTick: disp.tick}
	if o.listen != "" {
		stop, err := o.serveAPI(a, ctl)
		if err != nil {
			return err
		}
		defer stop()
	}
	if err := ctl.Run(ctx); err != nil {
		return err
	}
	s := ctl.Snapshot()
	_ = af.Sync() // as before: the summary reads it back through the page cache anyway
	if err := printAuditSummary(a.Stdout, auditFile); err != nil {
		return err
	}
	if !s.Complete {
		return errHalted
	}
	return nil
}

// openState opens the rollout's state store: etcd (which also elects the
// leader) with --etcd, else a bbolt file under --state.
func (o *rolloutStartOptions) openState(ctx context.Context) (rollout.Store, rollout.Elector, error) {
	if o.etcdURL != "" {
		es, err := etcdstore.Open(ctx, etcdstore.Config{Endpoints: strings.Split(o.etcdURL, ","), Prefix: o.etcdPrefix,
			CACert: o.etcdCA, Cert: o.etcdCert, Key: o.etcdKey})
		if err != nil {
			return nil, nil, err
		}
		return es, es, nil
	}
	bs, err := boltstore.Open(filepath.Join(o.stateDir, "state.db"))
	if err != nil {
		return nil, nil, err
	}
	return bs, nil, nil
}

// serveAPI serves the controller's API over mutual TLS on --listen until
// stop is called.
func (o *rolloutStartOptions) serveAPI(a *cli.App, ctl *rollout.Controller) (stop func(), err error) {
	conf, err := pki.ServerTLS(o.agentCA, o.apiCert, o.apiKey)
	if err != nil {
		return nil, fmt.Errorf("API TLS: %w", err)
	}
	l, err := tls.Listen("tcp", o.listen, conf)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: api.New(ctl, a.Log), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }() // ErrServerClosed once stopped
	cli.NewOutput(a.Stderr).Printf("API on https://%s\n", l.Addr())
	return func() { _ = srv.Close() }, nil
}

// rolloutDisplay prints a line per evaluation when something changed:
// the stage, and hosts by phase per colo.
type rolloutDisplay struct {
	w    *cli.Output // best effort: stderr, or the demo's stdout
	pl   *rollout.Plan
	json bool
	last string
}

func (d *rolloutDisplay) tick(out rollout.Outcome, st *rollout.State) {
	line := statusLine(d.pl, out.Stage, st)
	if line == d.last {
		return
	}
	d.last = line
	if d.json {
		b, _ := json.Marshal(map[string]any{"time": time.Now().UTC(), "stage": out.Stage, "status": line})
		d.w.Println(string(b))
		return
	}
	d.w.Printf("%s  %s\n", time.Now().Format("15:04:05"), line)
}

// statusLine is "stage S/N | COLO done/all (at work, failed) ... | halted".
func statusLine(pl *rollout.Plan, stage int, st *rollout.State) string {
	type count struct{ all, done, work, failed int }
	per := map[string]*count{}
	for _, h := range pl.Inv.Hosts {
		c := per[h.Colo]
		if c == nil {
			c = &count{}
			per[h.Colo] = c
		}
		c.all++
		switch st.Hosts[h.Name].Phase {
		case rollout.Done, rollout.Skipped:
			c.done++
		case rollout.Syncing, rollout.Checking, rollout.Cooling:
			c.work++
		case rollout.Failed:
			c.failed++
		}
	}
	parts := []string{fmt.Sprintf("stage %d/%d", min(stage+1, len(pl.Stages)), len(pl.Stages))}
	for _, colo := range pl.Inv.Colos() {
		c := per[colo]
		s := fmt.Sprintf("%s %d/%d", colo, c.done, c.all)
		if c.work > 0 {
			s += fmt.Sprintf(" (%d at work)", c.work)
		}
		if c.failed > 0 {
			s += fmt.Sprintf(" (%d failed)", c.failed)
		}
		parts = append(parts, s)
	}
	switch {
	case st.Aborted:
		parts = append(parts, "ABORTED")
	case st.Halted != "":
		parts = append(parts, "HALTED: "+st.Halted)
	case st.Paused:
		parts = append(parts, "paused")
	}
	if len(st.Frozen) > 0 {
		parts = append(parts, fmt.Sprintf("%d sets frozen", len(st.Frozen)))
	}
	return strings.Join(parts, " | ")
}

// printAuditSummary reads the audit log back: what was done, what waited
// and why, what failed.
func printAuditSummary(w io.Writer, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	evs, err := rollout.ParseAudit(b)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	byAction := map[rollout.Action]int{}
	waited := map[string]string{}
	var fails []string
	for _, e := range evs {
		byAction[e.Action]++
		switch e.Action {
		case rollout.Wait:
			if strings.HasPrefix(e.Reason, "blocked: ") || strings.HasPrefix(e.Reason, "unavailable: ") {
				waited[e.Host] = e.Reason
			}
		case rollout.Fail:
			fails = append(fails, e.Host+": "+e.Reason)
		}
	}
	p := cli.NewOutput(w)
	p.Printf("audit log %s: %d events\n", file, len(evs))
	var acts []string
	for a := range byAction {
		acts = append(acts, string(a))
	}
	sort.Strings(acts)
	tw := cli.NewTable(p, 2, 8, 2)
	for _, a := range acts {
		tw.Printf("  %s\t%d\n", a, byAction[rollout.Action(a)])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	hosts := slices.Sorted(func(yield func(string) bool) {
		for h := range waited {
			if !yield(h) {
				return
			}
		}
	})
	for _, h := range hosts {
		p.Printf("  held back: %s (%s)\n", h, waited[h])
	}
	for _, f := range fails {
		p.Printf("  failed: %s\n", f)
	}
	return p.Err()
}

func newRolloutStatus(a *cli.App) *cobra.Command {
	var (
		af     apiFlags
		watch  bool
		asJSON bool
		every  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a running rollout: hosts per phase, budgets per set, who waits and why",
		Long: `status asks the controller for the rollout's state. Exit status: 0 while
the rollout runs or once it completed, 1 when it is halted or aborted.`,
		Args: cli.ExactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			for {
				var s rollout.Status
				if err := af.call(cmd.Context(), http.MethodGet, rollout.PathStatus, nil, &s); err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(a.Stdout)
					enc.SetIndent("", "  ")
					if err := enc.Encode(s); err != nil {
						return err
					}
				} else if err := printStatus(a.Stdout, s); err != nil {
					return err
				}
				if !watch || s.Complete || s.Aborted {
					if s.Halted != "" || s.Aborted {
						return errHalted
					}
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(every):
				}
			}
		},
	}
	af.add(cmd)
	cmd.Flags().BoolVar(&watch, "watch", false, "print again every --every until the rollout ends")
	cmd.Flags().DurationVar(&every, "every", 2*time.Second, "interval for --watch")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

// printStatus writes a rollout's status: stage, hosts by phase, the
// budget of every set and who waits.
func printStatus(w io.Writer, s rollout.Status) error {
	p := cli.NewOutput(w)
	phases := map[rollout.Phase]int{}
	for _, h := range s.Hosts {
		phases[h.Phase]++
	}
	state := "running"
	switch {
	case s.Complete:
		state = "complete"
	case s.Aborted:
		state = "aborted"
	case s.Halted != "":
		state = "halted: " + s.Halted
	case s.Paused:
		state = "paused"
	}
	p.Printf("image %s  stage %d/%d  %s  failures %d\n", s.Image, min(s.Stage+1, s.Stages), s.Stages, state, s.Failures)
	var ps []string
	for p, n := range phases {
		ps = append(ps, fmt.Sprintf("%s %d", p, n))
	}
	sort.Strings(ps)
	p.Printf("hosts: %s\n", strings.Join(ps, ", "))
	tw := cli.NewTable(p, 2, 8, 2)
	tw.Println("SET\tBUDGET\tFROZEN BY")
	for _, u := range s.Sets {
		tw.Printf("%s\t%d/%d\t%s\n", u.Set, u.Used, u.Max, s.Frozen[u.Set])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var waiting []string
	for h, r := range s.Waiting {
		waiting = append(waiting, h+": "+r)
	}
	sort.Strings(waiting)
	for _, l := range waiting {
		p.Printf("waiting %s\n", l)
	}
	return p.Err()
}

func newRolloutPlan(a *cli.App) *cobra.Command {
	var (
		af               apiFlags
		invFile, polFile string
		asJSON           bool
	)
	cmd := &cobra.Command{
		Use:   "plan [--inventory FILE --policy FILE | --api ADDR]",
		Short: "Show what the rollout would do now and why, without doing it",
		Long: `plan shows the stages hosts fall into and the decisions the controller
would take now: which hosts start, which wait and why, with the budget of
their sets. With --inventory and --policy it plans a fresh rollout,
reading the policy's indicator sources; otherwise it asks the running
controller at --api.`,
		Args: cli.ExactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out rollout.Outcome
			var pl *rollout.Plan
			if invFile != "" || polFile != "" {
				if invFile == "" || polFile == "" {
					return cli.UsageError{Err: errors.New("give both --inventory and --policy")}
				}
				var err error
				if pl, err = rollout.LoadPlan(invFile, polFile); err != nil {
					return err
				}
				src := &rollout.AlertSource{Sources: pl.Pol.Indicators}
				out = rollout.Decide(pl, &rollout.State{Hosts: map[string]rollout.HostState{}}, src.Read(cmd.Context()), nil, time.Now())
			} else if err := af.call(cmd.Context(), http.MethodGet, rollout.PathPlan, nil, &out); err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			if pl != nil {
				for i, s := range pl.Stages {
					a.Printf("stage %d: %d hosts, bake %v\n", i, len(s), pl.Bake[i])
				}
			}
			tw := cli.NewTable(a.Stdout, 2, 8, 2)
			tw.Println("ACTION\tHOST\tSTAGE\tREASON\tBUDGET")
			for _, d := range out.Decisions {
				var b []string
				for _, u := range d.Budget {
					b = append(b, fmt.Sprintf("%s %d/%d", u.Set, u.Used, u.Max))
				}
				tw.Printf("%s\t%s\t%d\t%s\t%s\n", d.Action, d.Host, d.Stage, d.Reason, strings.Join(b, ", "))
			}
			return tw.Flush()
		},
	}
	af.add(cmd)
	cmd.Flags().StringVar(&invFile, "inventory", "", "inventory file: plan a fresh rollout")
	cmd.Flags().StringVar(&polFile, "policy", "", "policy file")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the decisions as JSON")
	return cmd
}

func newRolloutCommandCmd(a *cli.App, name, short string, withHost bool) *cobra.Command {
	var af apiFlags
	use := name
	n := 0
	if withHost {
		use, n = name+" HOST", 1
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  short + ".\nThe controller commits the command before it answers.",
		Args:  cli.ExactArgs(n),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := rollout.CommandRequest{Command: name}
			if withHost {
				req.Host = args[0]
			}
			var s rollout.Status
			if err := af.call(cmd.Context(), http.MethodPost, rollout.PathCommand, req, &s); err != nil {
				return err
			}
			a.Printf("%s: done\n", strings.TrimSpace(name+" "+req.Host))
			return nil
		},
	}
	af.add(cmd)
	return cmd
}
