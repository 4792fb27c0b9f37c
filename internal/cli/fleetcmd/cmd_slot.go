package fleetcmd

import (
	"context"
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/pusher/agent"
	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/pusher/slots"
	slotboot "github.com/ingotfleet/ingot/pusher/slots/boot"
)

func init() { cli.Register(newSlotCommand) }

// newSlotAgent makes the agent of config c and, when c has slots, its
// slot manager (nil otherwise).
func newSlotAgent(c *agent.Config, a *cli.App) (*agent.Agent, *slots.Manager, error) {
	var boot slotboot.Boot
	if c.Slots != nil {
		var err error
		if boot, err = slots.Prepare(c); err != nil {
			return nil, nil, err
		}
	}
	ag, err := agent.New(c, a.Log)
	if err != nil || boot == nil {
		return ag, nil, err
	}
	m := slots.New(ag, boot, a.Log)
	ag.Slots = m
	return ag, m, nil
}

// settleTrial runs the boot-time trial of a switch and logs its outcome.
func settleTrial(ctx context.Context, a *cli.App, m *slots.Manager) {
	att, err := m.AtBoot(ctx)
	switch {
	case err != nil:
		a.Log.Error("settling the slot switch failed", "err", err)
	case att != nil:
		a.Log.Error("slot switch failed", "slot", att.Slot, "image", att.Image, "reason", att.Reason)
	default:
		if s, err := m.Status(); err == nil && s.LastSwitch != nil {
			a.Log.Info("slots", "booted", s.Booted, "default", s.Default, "last_switch_downtime_seconds", s.LastSwitch.Downtime)
		}
	}
}

func newSlotCommand(a *cli.App) *cobra.Command {
	var config string
	load := func() (*slots.Manager, error) {
		c, err := agent.LoadConfig(config)
		if err != nil {
			return nil, err
		}
		_, m, err := newSlotAgent(c, a)
		if err == nil && m == nil {
			err = api.ErrNoSlots
		}
		return m, err
	}
	printStatus := func(m *slots.Manager) error {
		s, err := m.Status()
		if err != nil {
			return err
		}
		enc := json.NewEncoder(a.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	cmd := &cobra.Command{
		Use:   "slot",
		Short: "This host's root slots: status, switch, commit, rollback, snapshot, restore",
		Long: `The slot commands work on this host directly, through the agent's config
(--config), without the network. See docs/slots.md.`,
	}
	cmd.PersistentFlags().StringVar(&config, "config", "/etc/ingot/agent.yaml", "agent config file")
	simple := func(use, short string, fn func(*slots.Manager, context.Context) error) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cli.ExactArgs(0), RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := load()
			if err != nil {
				return err
			}
			if fn != nil {
				if err := fn(m, cmd.Context()); err != nil {
					return err
				}
			}
			return printStatus(m)
		}}
	}
	var kexec bool
	switchCmd := simple("switch", "Boot the other slot once, on trial (the agent there commits it when healthy)", func(m *slots.Manager, ctx context.Context) error {
		if kexec {
			return m.SwitchKexec(ctx)
		}
		return m.Switch(ctx)
	})
	switchCmd.Flags().BoolVar(&kexec, "kexec", false, "start the other slot with kexec, skipping firmware and bootloader (its kernel must be the running one; kexec-tools)")
	cmd.AddCommand(
		simple("status", "Print which slot is booted, the default, each slot's image, trials and failed attempts", nil),
		switchCmd,
		simple("commit", "Make the booted slot the default", (*slots.Manager).Commit),
		simple("rollback", "Switch back to the other slot, on trial, without the network", (*slots.Manager).Rollback),
		&cobra.Command{Use: "snapshot", Short: "Save the host's configuration (local paths, /etc files that differ from the image) as a tar.gz",
			Args: cli.ExactArgs(0), RunE: func(cmd *cobra.Command, _ []string) error {
				m, err := load()
				if err != nil {
					return err
				}
				p, err := m.Snapshot(cmd.Context(), "manual")
				if err == nil {
					a.Println(p)
				}
				return err
			}},
		&cobra.Command{Use: "restore FILE", Short: "Write a snapshot back into the booted root",
			Args: cli.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
				m, err := load()
				if err != nil {
					return err
				}
				n, err := m.Restore(cmd.Context(), args[0])
				if err == nil {
					a.Printf("restored %d paths\n", n)
				}
				return err
			}},
	)
	return cmd
}
