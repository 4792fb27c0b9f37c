package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/internal/cli"
)

func init() { cli.Register(newVersionCommand) }

func newVersionCommand(a *cli.App) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print ingot's version",
		Args:  cli.ExactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(a.Stdout, cli.Version())
			return err
		},
	}
}
