package imagecmd

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/internal/atomicfile"
	"github.com/ingotfleet/ingot/internal/cli"
)

func init() { registerImage(newImageExportCommand) }

type imageExportOptions struct {
	output      string
	compression string
}

func newImageExportCommand(a *cli.App) *cobra.Command {
	var o imageExportOptions
	cmd := &cobra.Command{
		Use:   "export REF -o FILE.tar[.gz|.zst]",
		Short: "Write an image as a deterministic tar",
		Long: `Export writes the image as a deterministic PAX tar: the same image always
gives the same bytes. The compression follows the output name (.tar, .tar.gz
or .tgz, .tar.zst or .tzst) unless --compression says otherwise; "-o -"
writes to standard output (uncompressed unless --compression). The file
appears only when complete.`,
		Args: cli.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runImageExport(cmd, a, o, args[0]) },
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "output `FILE` (\"-\" for standard output)")
	cmd.Flags().StringVar(&o.compression, "compression", "", "none, gzip or zstd (default: from the output name)")
	return cmd
}

func parseCompression(s string) (compression.Compression, error) {
	switch s {
	case "none":
		return compression.None, nil
	case "gzip", "gz":
		return compression.Gzip, nil
	case "zstd", "zst":
		return compression.Zstd, nil
	}
	return 0, fmt.Errorf("--compression %q: want none, gzip or zstd", s)
}

func runImageExport(cmd *cobra.Command, a *cli.App, o imageExportOptions, ref string) (err error) {
	ctx := cmd.Context()
	if o.output == "" {
		return cli.UsageError{Err: fmt.Errorf("export: -o FILE is required (\"-o -\" for standard output)")}
	}
	c := compression.None
	if o.output != "-" {
		c = compression.CompressionFromName(o.output)
	}
	if o.compression != "" {
		if c, err = parseCompression(o.compression); err != nil {
			return cli.UsageError{Err: err}
		}
	}
	s, err := a.OpenStore()
	if err != nil {
		return err
	}
	defer cli.Close(&err, s)
	d, err := a.ResolveImage(ctx, s, ref)
	if err != nil {
		return err
	}
	var w io.Writer = a.Stdout
	if o.output != "-" {
		// Write beside the target and rename when done: a failed export
		// leaves no partial file behind.
		f, err := atomicfile.Create(o.output, 0o644)
		if err != nil {
			return err
		}
		defer f.Abort()
		if err := s.Export(ctx, d, f, c); err != nil {
			return err
		}
		if err := f.Commit(); err != nil {
			return err
		}
		a.Log.Info("exported", "digest", d, "file", o.output, "compression", c)
		return nil
	}
	return s.Export(ctx, d, w, c)
}
