package imagecmd

import (
	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/cli"
)

func init() { registerImage(newImageManifestCommand) }

func newImageManifestCommand(a *cli.App) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "manifest REF",
		Short: "Print an image's manifest (ingot's canonical form, or strict mtree)",
		Long: `Manifest prints the image's manifest. The ingot form is canonical: its sha256
is the image digest. --format mtree prints strict mtree for
"mtree -f - -p ROOT" (NetBSD mtree) and bsdtar.`,
		Args: cli.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			f, err := images.ParseFormat(format)
			if err != nil {
				return cli.UsageError{Err: err}
			}
			s, err := a.OpenStore()
			if err != nil {
				return err
			}
			defer cli.Close(&err, s)
			d, err := a.ResolveImage(cmd.Context(), s, args[0])
			if err != nil {
				return err
			}
			m, err := s.Manifest(cmd.Context(), d)
			if err != nil {
				return err
			}
			return m.Write(a.Stdout, f)
		},
	}
	cmd.Flags().StringVar(&format, "format", "ingot", "ingot or mtree")
	return cmd
}
