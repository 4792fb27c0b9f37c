package imagecmd

import (
	"fmt"

	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/spf13/cobra"
)

func init() { cli.Register(newImageCommand) }

// imageSubcommands are the `ingot image …` commands, one file each
// (cmd_image_<name>.go), added from init like the top-level ones.
var imageSubcommands []func(*cli.App) *cobra.Command

func registerImage(f func(*cli.App) *cobra.Command) { imageSubcommands = append(imageSubcommands, f) }

func newImageCommand(a *cli.App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Import, export, list, print and verify images in the store",
		Long: `Images live in a content-addressed store (--store, else $INGOT_STORE, else
/var/lib/ingot/store as root, ~/.local/share/ingot/store otherwise). A store
given as an http:// or https:// URL is read over HTTP (read-only).

REF names an image: its digest, a unique prefix of it (at least 4 hex
digits), NAME:TAG, or the path of a tar file (.tar, .tar.gz, .tgz, .tar.zst),
which is imported first.`,
		Args: cli.ExactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cli.UsageError{Err: fmt.Errorf("ingot image: missing subcommand")}
		},
	}
	for _, f := range imageSubcommands {
		cmd.AddCommand(f(a))
	}
	return cmd
}
