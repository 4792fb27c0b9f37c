package fleetcmd

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/internal/rate"
	"github.com/ingotfleet/ingot/pusher"
	"github.com/ingotfleet/ingot/pusher/agent"
	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/pusher/fetch"
)

func init() { cli.Register(newAgentCommand) }

func newAgentCommand(a *cli.App) *cobra.Command {
	var (
		config        string
		once          string
		recover       bool
		ref           string
		allowRollback bool
		slot          bool
	)
	cmd := &cobra.Command{
		Use:   "agent --config FILE",
		Short: "Run the host agent: an API over mutual TLS that syncs this host's root to images",
		Long: `The agent serves status, sync, rollback and Prometheus metrics over mutual
TLS (certificates from 'ingot ca'). On start it finishes any commit a crash
interrupted. See examples/agent.yaml and docs/pusher.md.

--sync IMAGE runs one sync from the configured stores and exits (no API),
judged under --ref NAME:TAG if given (else under every name the image is
signed for); --allow-rollback lets it go to an older image. --recover only
finishes an interrupted commit.

With a slots section in the config, the agent also syncs the inactive root
slot (POST /v1/sync with "slot": "inactive"), and at start settles a switch:
on a slot on trial it runs the health checks and commits, or records the
failed attempt (docs/slots.md).`,
		Args: cli.ExactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := agent.LoadConfig(config)
			if err != nil {
				return err
			}
			ag, mgr, err := newSlotAgent(c, a)
			if err != nil {
				return err
			}
			if slot && mgr == nil {
				return cli.UsageError{Err: fmt.Errorf("--slot: %w", api.ErrNoSlots)}
			}
			installCrashHook(a)
			if err := ag.Lower(); err != nil {
				a.Log.Warn("could not lower priority", "err", err)
			}
			ctx := cmd.Context()
			switch {
			case recover:
				done, err := ag.Syncer.Recover(ctx)
				if err != nil {
					return err
				}
				a.Printf("recovered: %v\n", done)
				return nil
			case once != "":
				d, err := images.ParseDigest(once)
				if err != nil {
					return cli.UsageError{Err: fmt.Errorf("--sync: %w", err)}
				}
				bps, err := rate.Parse(c.Limits.Download)
				if err != nil {
					return err
				}
				src, err := fetch.OpenSource(c.Stores, fetch.SourceOptions{Limit: rate.New(bps),
					Retries: c.Retries, Backoff: c.Backoff, Log: a.Log})
				if err != nil {
					return err
				}
				defer func() { _ = src.Close() }() // the store is only read: nothing to flush
				if ref != "" {
					if _, _, err := store.ParseRef(ref); err != nil {
						return cli.UsageError{Err: fmt.Errorf("--ref: %w", err)}
					}
				}
				opts := pusher.SyncOptions{Ref: ref, AllowRollback: allowRollback}
				if slot {
					return printResult(a, mgr.SyncSlot(ctx, d, src, opts, false))
				}
				return printResult(a, ag.Syncer.Sync(ctx, d, src, opts))
			}
			if mgr != nil {
				go settleTrial(ctx, a, mgr)
			}
			return ag.Serve(ctx, func(addr string) {
				a.Log.Info("agent listening", "addr", addr, "root", c.Root, "name", c.Name)
			})
		},
	}
	cmd.Flags().StringVar(&config, "config", "/etc/ingot/agent.yaml", "agent config file")
	cmd.Flags().StringVar(&once, "sync", "", "sync once to this image digest and exit")
	cmd.Flags().BoolVar(&recover, "recover", false, "finish an interrupted commit and exit")
	cmd.Flags().StringVar(&ref, "ref", "", "with --sync: the NAME:TAG the image is published as (its signature must name it)")
	cmd.Flags().BoolVar(&allowRollback, "allow-rollback", false, "with --sync: accept an image older than the one this host runs")
	cmd.Flags().BoolVar(&slot, "slot", false, "with --sync: write the inactive root slot instead of the root")
	return cmd
}

func printResult(a *cli.App, res api.Result) error {
	enc := json.NewEncoder(a.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return err
	}
	if !res.OK {
		return fmt.Errorf("sync: %s", res.Error)
	}
	return nil
}
