package imagecmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/pusher/signing"
)

func init() { registerImage(newImageSignCommand) }

func newImageSignCommand(a *cli.App) *cobra.Command {
	var (
		keyFile string
		st      signing.Statement
	)
	cmd := &cobra.Command{
		Use:   "sign REF --key FILE [--as NAME:TAG] [--generation N]",
		Short: "Sign an image with an ed25519 key (agents sync only to images signed by a key they trust)",
		Long: `sign adds a signature by the key to image REF. The signature covers the
image's digest, the NAME:TAG it is published as (REF itself, or --as when
REF is a digest) and a generation: a number that grows with every image
published under that name, by default the time of signing in nanoseconds.
An agent refuses an image whose generation under a name is lower than
that of an image it already synced under it (a store answering an old
ref), unless the controller asks for a rollback (ingot push
--allow-rollback). Give --generation to number releases yourself; keep to
one scheme per name.`,
		Args: cli.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyFile == "" {
				return cli.UsageError{Err: fmt.Errorf("--key FILE is required")}
			}
			return signImage(cmd.Context(), a, args[0], keyFile, st)
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "secret key file (ingot key gen)")
	cmd.Flags().StringVar(&st.Ref, "as", "", "the NAME:TAG the image is published as (default: REF, when it is one)")
	cmd.Flags().Uint64Var(&st.Generation, "generation", 0, "the image's generation under that name (default: the time now, in nanoseconds since 1970)")
	return cmd
}
