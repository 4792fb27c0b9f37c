package fleetcmd

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/pusher/agent"
	"github.com/ingotfleet/ingot/pusher/api"
)

func init() { cli.Register(newRollbackCommand) }

func newRollbackCommand(a *cli.App) *cobra.Command {
	var (
		ff           fleetFlags
		config       string
		slot         bool
		slotDeadline time.Duration
	)
	cmd := &cobra.Command{
		Use:   "rollback (--hosts FILE | --config AGENT.yaml)",
		Short: "Return hosts to their previous image, without the network",
		Long: `With --hosts, asks every agent to roll back (like push). With --config, rolls
this host back directly, the agent's own way (it must not be running a
sync). A rollback uses only what the host kept: the previous manifest and
the files the last commit replaced.

With --slot, hosts with root slots boot their other slot instead, on trial
like any switch; with --hosts each host counts as running until that boot
commits (or fails, and the host comes back on the slot it left).`,
		Args: cli.ExactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if config != "" {
				c, err := agent.LoadConfig(config)
				if err != nil {
					return err
				}
				ag, m, err := newSlotAgent(c, a)
				if err != nil {
					return err
				}
				if slot {
					if m == nil {
						return api.ErrNoSlots
					}
					if err := m.Rollback(cmd.Context()); err != nil {
						return err
					}
					a.Println("the next boot starts the other slot, on trial")
					return nil
				}
				return printResult(a, ag.Syncer.Rollback(cmd.Context()))
			}
			if ff.hosts == "" {
				return cli.UsageError{Err: fmt.Errorf("give --hosts or --config")}
			}
			c, hosts, err := ff.load()
			if err != nil {
				return err
			}
			opts := agentclient.PushOptions{Rollback: true, Concurrency: ff.concurrency, Canary: ff.canary, MaxFailures: ff.maxFailures}
			if slot {
				opts.Slot, opts.SlotDeadline = api.SlotInactive, slotDeadline
			}
			return runFleet(cmd.Context(), a, c, hosts, opts, ff.json)
		},
	}
	ff.add(cmd)
	cmd.Flags().StringVar(&config, "config", "", "roll back this host: the agent's config file")
	cmd.Flags().BoolVar(&slot, "slot", false, "boot the other root slot (on trial) instead of syncing the root back")
	cmd.Flags().DurationVar(&slotDeadline, "slot-deadline", 30*time.Minute, "with --slot --hosts: a host fails when its reboot and trial boot take longer")
	return cmd
}
