package fleetcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/internal/pki"
	"github.com/ingotfleet/ingot/internal/rate"
	"github.com/ingotfleet/ingot/pusher/api"
)

func init() { cli.Register(newPushCommand) }

// fleetFlags are what push and rollback share.
type fleetFlags struct {
	hosts, ca, cert, key string
	concurrency, canary  int
	maxFailures          int
	json                 bool
}

func (f *fleetFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.hosts, "hosts", "", "hosts file: one agent a line, ADDR or NAME ADDR")
	cmd.Flags().StringVar(&f.ca, "ca", "ca/ca.pem", "the fleet CA certificate")
	cmd.Flags().StringVar(&f.cert, "cert", "ca/controller.pem", "this controller's certificate")
	cmd.Flags().StringVar(&f.key, "key", "ca/controller-key.pem", "this controller's key")
	cmd.Flags().IntVar(&f.concurrency, "concurrency", 10, "hosts synced at once")
	cmd.Flags().IntVar(&f.canary, "canary", 0, "sync this many hosts first, alone; stop if any fails")
	cmd.Flags().IntVar(&f.maxFailures, "max-failures", 0, "stop starting hosts once more than this many failed (default a tenth of the hosts, at least 1)")
	cmd.Flags().BoolVar(&f.json, "json", false, "print the reports as JSON")
}

func (f *fleetFlags) load() (*agentclient.Client, []agentclient.Host, error) {
	if f.hosts == "" {
		return nil, nil, cli.UsageError{Err: fmt.Errorf("--hosts FILE is required")}
	}
	fh, err := os.Open(f.hosts)
	if err != nil {
		return nil, nil, fmt.Errorf("reading hosts: %w", err)
	}
	defer fh.Close()
	hosts, err := agentclient.ParseHosts(f.hosts, fh)
	if err != nil {
		return nil, nil, err
	}
	if len(hosts) == 0 {
		return nil, nil, fmt.Errorf("%s lists no hosts", f.hosts)
	}
	conf, err := pki.ClientTLS(f.ca, f.cert, f.key)
	if err != nil {
		return nil, nil, err
	}
	return agentclient.NewClient(conf), hosts, nil
}

func newPushCommand(a *cli.App) *cobra.Command {
	var (
		ff            fleetFlags
		bwlimit       string
		stores        []string
		dryRun        bool
		allowRollback bool
		slot          bool
		slotDeadline  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "push REF --hosts FILE",
		Short: "Sync many hosts' agents to an image, with a live display and a summary",
		Long: `push asks every agent in the hosts file to sync to image REF (a digest, a
unique prefix of one, or NAME:TAG in the store), at most --concurrency at a
time, canaries first. It stops starting new hosts once failures pass the
threshold, prints a summary table (or --json) and exits 1 if any host failed.

With --slot each agent writes its inactive root slot, switches to it and
reboots; a host counts as running (against --concurrency) until its trial
boot commits, and as failed when the trial fails and the host comes back on
its old slot (docs/slots.md).

An agent refuses an image older (by its signed generation) than the one it
synced under the same NAME:TAG: a store that answers an old ref cannot move
the fleet back. --allow-rollback is the operator's explicit rollback.`,
		Args: cli.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := rate.Parse(bwlimit); err != nil {
				return cli.UsageError{Err: fmt.Errorf("--bwlimit: %w", err)}
			}
			d, err := resolvePushImage(cmd.Context(), a, args[0])
			if err != nil {
				return err
			}
			c, hosts, err := ff.load()
			if err != nil {
				return err
			}
			opts := agentclient.PushOptions{Image: d, Concurrency: ff.concurrency, Canary: ff.canary,
				MaxFailures: ff.maxFailures, Stores: stores, BWLimit: bwlimit, DryRun: dryRun, AllowRollback: allowRollback}
			if _, _, err := store.ParseRef(args[0]); err == nil {
				opts.Ref = args[0]
			}
			if slot {
				opts.Slot, opts.SlotDeadline = api.SlotInactive, slotDeadline
			}
			return runFleet(cmd.Context(), a, c, hosts, opts, ff.json)
		},
	}
	ff.add(cmd)
	cmd.Flags().StringVar(&bwlimit, "bwlimit", "", "download limit per host for this push (bytes/s: 500k, 10M)")
	cmd.Flags().StringSliceVar(&stores, "store-url", nil, "store URLs the agents fetch from (default: each agent's configured stores)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "plan only: report what would change and the drift")
	cmd.Flags().BoolVar(&allowRollback, "allow-rollback", false, "let agents go to an image older than the one they run (an explicit rollback)")
	cmd.Flags().BoolVar(&slot, "slot", false, "sync each host's inactive root slot, switch to it and wait for its trial boot to commit (hosts with slots; docs/slots.md)")
	cmd.Flags().DurationVar(&slotDeadline, "slot-deadline", 30*time.Minute, "with --slot: a host fails when its sync, reboot and trial boot take longer")
	return cmd
}

// runFleet runs a push with the live display and prints the summary.
func runFleet(ctx context.Context, a *cli.App, c *agentclient.Client, hosts []agentclient.Host, opts agentclient.PushOptions, asJSON bool) error {
	disp := newDisplay(a.Stdout, a.Stderr, len(hosts), asJSON)
	opts.Update = disp.update
	stop := disp.start()
	reports := agentclient.Push(ctx, c, hosts, opts)
	stop()
	failed := 0
	for _, r := range reports {
		if r.State != agentclient.HostOK {
			failed++
		}
	}
	if asJSON {
		enc := json.NewEncoder(a.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"image": opts.Image.String(), "hosts": reports, "failed": failed}); err != nil {
			return err
		}
	} else if err := printSummary(a.Stdout, reports); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d hosts did not sync", cli.ErrNegative, failed, len(hosts))
	}
	return nil
}

// printSummary writes a table of the hosts' reports and the count of
// those that synced.
func printSummary(w io.Writer, reports []agentclient.HostReport) error {
	tw := cli.NewTable(w, 0, 4, 2)
	tw.Println("HOST\tSTATE\tSECONDS\tCHANGED\tFETCHED\tDELTAS\tDRIFT\tTRIGGERS\tERROR")
	ok := 0
	for _, r := range reports {
		changed, fetched, deltas, drift, trig := "-", "-", "-", "-", "-"
		if res := r.Result; res != nil {
			changed = fmt.Sprint(res.Changed)
			fetched = cli.HumanBytes(res.Fetched)
			deltas = fmt.Sprint(res.Deltas)
			drift = fmt.Sprint(len(res.Drift))
			var names []string
			for _, t := range res.Triggers {
				names = append(names, t.Name)
			}
			if len(names) > 0 {
				trig = strings.Join(names, ",")
			}
		}
		if r.State == agentclient.HostOK {
			ok++
		}
		msg := r.Error
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i] + " …"
		}
		tw.Printf("%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Host.Name, r.State, r.Seconds, changed, fetched, deltas, drift, trig, msg)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d of %d hosts ok\n", ok, len(reports))
	return err
}

// display shows a push as it runs: on a terminal a bar per host in flight
// and a fleet total, redrawn; otherwise one plain line per state change.
type display struct {
	out   *cli.Output // stdout, or stderr with --json; keeps its first write error
	tty   bool
	mu    sync.Mutex
	hosts map[string]agentclient.HostReport
	order []string
	total int
	lines int
}

func newDisplay(out, errw io.Writer, total int, asJSON bool) *display {
	d := &display{out: cli.NewOutput(out), tty: cli.IsTerminal(out), hosts: map[string]agentclient.HostReport{}, total: total}
	if asJSON {
		// Plain progress lines go to stderr so stdout stays JSON.
		d.out, d.tty = cli.NewOutput(errw), false
	}
	return d
}

func (d *display) update(r agentclient.HostReport) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old, seen := d.hosts[r.Host.Name]
	if !seen {
		d.order = append(d.order, r.Host.Name)
	}
	d.hosts[r.Host.Name] = r
	if d.tty || (seen && old.State == r.State) || r.State == agentclient.HostPending {
		return
	}
	line := fmt.Sprintf("%s %s", r.Host.Name, r.State)
	if r.Result != nil && r.State == agentclient.HostOK {
		line += fmt.Sprintf(" %.1fs changed=%d fetched=%s", r.Seconds, r.Result.Changed, cli.HumanBytes(r.Result.Fetched))
	}
	if r.Error != "" {
		line += ": " + strings.SplitN(r.Error, "\n", 2)[0]
	}
	d.out.Println(line)
}

func (d *display) start() (stop func()) {
	if !d.tty {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			d.draw()
			select {
			case <-t.C:
			case <-done:
				d.draw()
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func bar(frac float64, width int) string {
	frac = max(0, min(1, frac))
	n := int(frac * float64(width))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func (d *display) draw() {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	if d.lines > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", d.lines)
	}
	lines := 0
	counts := map[agentclient.HostState]int{}
	var done, total int64
	for _, name := range d.order {
		r := d.hosts[name]
		counts[r.State]++
		done += r.Progress.BytesDone
		total += r.Progress.BytesTotal
		if r.State != agentclient.HostRunning {
			continue
		}
		frac := 0.0
		if r.Progress.BytesTotal > 0 {
			frac = float64(r.Progress.BytesDone) / float64(r.Progress.BytesTotal)
		}
		fmt.Fprintf(&b, "\x1b[2K%-20s %s %3.0f%% %8s %s\n", name, bar(frac, 30), frac*100, cli.HumanBytes(r.Progress.BytesDone), r.Progress.Phase)
		lines++
	}
	pending := d.total - counts[agentclient.HostOK] - counts[agentclient.HostFailed] - counts[agentclient.HostRunning] - counts[agentclient.HostSkipped]
	frac := float64(counts[agentclient.HostOK]+counts[agentclient.HostFailed]) / float64(max(d.total, 1))
	fmt.Fprintf(&b, "\x1b[2Kfleet %s %d ok, %d failed, %d running, %d pending, %d skipped; %s of %s staged\n",
		bar(frac, 30), counts[agentclient.HostOK], counts[agentclient.HostFailed], counts[agentclient.HostRunning], pending, counts[agentclient.HostSkipped], cli.HumanBytes(done), cli.HumanBytes(total))
	lines++
	for i := lines; i < d.lines; i++ {
		b.WriteString("\x1b[2K\n")
	}
	if d.lines > lines {
		fmt.Fprintf(&b, "\x1b[%dA", d.lines-lines)
	}
	d.lines = lines
	d.out.Printf("%s", b.String())
}

// resolvePushImage turns REF into a digest. A full digest is taken as it
// is: the agents fetch from their own stores, which may hold images the
// local store does not; prefixes and NAME:TAG are looked up in the store.
func resolvePushImage(ctx context.Context, a *cli.App, ref string) (_ images.Digest, err error) {
	if d, err := images.ParseDigest(strings.TrimPrefix(ref, "sha256:")); err == nil {
		return d, nil
	}
	s, err := a.OpenStore()
	if err != nil {
		return images.Digest{}, err
	}
	defer cli.Close(&err, s)
	return a.ResolveImage(ctx, s, ref)
}
