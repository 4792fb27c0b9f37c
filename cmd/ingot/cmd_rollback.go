package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/pusher"
)

func init() { register(newRollbackCommand) }

func newRollbackCommand(a *App) *cobra.Command {
	var (
		ff     fleetFlags
		config string
		slot   bool
	)
	cmd := &cobra.Command{
		Use:   "rollback (--hosts FILE | --config AGENT.yaml)",
		Short: "Return hosts to their previous image, without the network",
		Long: `With --hosts, asks every agent to roll back (like push). With --config, rolls
this host back directly, the agent's own way (it must not be running a
sync). A rollback uses only what the host kept: the previous manifest and
the files the last commit replaced.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if config != "" {
				c, err := pusher.LoadConfig(config)
				if err != nil {
					return err
				}
				ag, m, err := newSlotAgent(c, a)
				if err != nil {
					return err
				}
				if slot {
					if m == nil {
						return pusher.ErrNoSlots
					}
					if err := m.Rollback(cmd.Context()); err != nil {
						return err
					}
					fmt.Fprintln(a.Stdout, "the next boot starts the other slot, on trial")
					return nil
				}
				return printResult(a, ag.Syncer.Rollback(cmd.Context()))
			}
			if ff.hosts == "" {
				return usageError{fmt.Errorf("give --hosts or --config")}
			}
			if slot {
				return usageError{fmt.Errorf("--slot works with --config (on the host itself)")}
			}
			c, hosts, err := ff.load()
			if err != nil {
				return err
			}
			return runFleet(cmd.Context(), a, c, hosts, agentclient.PushOptions{Rollback: true, Concurrency: ff.concurrency,
				Canary: ff.canary, MaxFailures: ff.maxFailures}, ff.json)
		},
	}
	ff.add(cmd)
	cmd.Flags().StringVar(&config, "config", "", "roll back this host: the agent's config file")
	cmd.Flags().BoolVar(&slot, "slot", false, "with --config: boot the other root slot instead of syncing the root back")
	return cmd
}
