package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { registerImage(newImageSignCommand) }

func newImageSignCommand(a *App) *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "sign REF --key FILE",
		Short: "Sign an image with an ed25519 key (agents sync only to images signed by a key they trust)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyFile == "" {
				return usageError{fmt.Errorf("--key FILE is required")}
			}
			return signImage(cmd.Context(), a, args[0], keyFile)
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "secret key file (ingot key gen)")
	return cmd
}
