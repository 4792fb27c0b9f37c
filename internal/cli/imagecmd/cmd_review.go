package imagecmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/differ"
	"github.com/ingotfleet/ingot/differ/review"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/imagetar"
	"github.com/ingotfleet/ingot/images/view"
	"github.com/ingotfleet/ingot/internal/atomicfile"
	"github.com/ingotfleet/ingot/internal/cli"
)

func init() { cli.Register(newReviewCommand) }

// ReviewOptions are the flags of `ingot review`.
type ReviewOptions struct {
	Base       string
	Recommends bool
	DiffOptions
}

func newReviewCommand(a *cli.App) *cobra.Command {
	var o ReviewOptions
	cmd := &cobra.Command{
		Use:   "review PKG.deb --base IMAGE",
		Short: "Report everything installing one package into an image changes",
		Long: `Install one package into a throwaway copy of a base image (a tar, a
directory or an image reference in the store) inside a sandbox and report what it changed: the files it adds,
changes and removes; what its maintainer scripts changed outside its own
file list (users and groups, alternatives, enabled services, generated
files); the dependencies it pulled in; its conffiles; its maintainer
scripts' text; and its changelog since the version in the base image.

Dependencies come from the base image's own apt sources (downloaded first,
with network; the installation itself runs with no network at all, as root
of a user namespace with a reduced capability set and a seccomp filter,
since the package is not trusted yet: see docs/sandbox.md); if
some cannot be had, the review fails naming them. Needs root.`,
		Args: cli.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReview(cmd.Context(), a, &o, args[0])
		},
	}
	o.AddFlags(cmd)
	cmd.Flags().StringVar(&o.Base, "base", "", "base image: a tar, a directory or an image reference in the store (required)")
	cmd.Flags().BoolVar(&o.Recommends, "recommends", false, "install the package's Recommends too (apt's default; off to keep the review to what the package needs)")
	return cmd
}

func runReview(ctx context.Context, a *cli.App, o *ReviewOptions, deb string) error {
	if o.Base == "" {
		return cli.UsageError{Err: errors.New("--base is required")}
	}
	opts, format, err := o.options()
	if err != nil {
		return err
	}
	if format == differ.FormatHTML {
		return cli.UsageError{Err: errors.New("--format: review writes text or json")}
	}
	base, label := o.Base, o.Base
	if _, err := os.Stat(o.Base); err != nil {
		// Not a file or directory: an image reference in the store,
		// exported to a temporary tar for the review.
		src, err := openStoreImage(ctx, a, o.Base)
		if err != nil {
			return fmt.Errorf("base image: %w", err)
		}
		f, err := os.CreateTemp("", "ingot-review-base-*.tar")
		if err != nil {
			return err
		}
		defer func() { _ = os.Remove(f.Name()) }() // a temporary export; the review has its answer
		err = imagetar.Write(ctx, f, src.Manifest(), func(ctx context.Context, e *images.Entry) (io.ReadCloser, error) {
			return src.(*view.Store).Open(ctx, e)
		})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("base image %s: %w", o.Base, err)
		}
		base = f.Name()
	}
	if os.Geteuid() != 0 {
		return errors.New("ingot review needs root (namespaces, chroot, owners and devices of the base image)")
	}
	var log io.Writer = io.Discard
	if a.Log != nil && a.Log.Enabled(ctx, -4) { // --log-level debug shows apt's output
		log = a.Stderr
	}
	rv, err := review.Run(ctx, base, deb, review.Options{Options: opts, Recommends: o.Recommends, BaseLabel: label}, log)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := rv.Write(&buf, format); err != nil {
		return err
	}
	if o.Output == "" || o.Output == "-" {
		_, err = a.Stdout.Write(buf.Bytes())
		return err
	}
	return atomicfile.WriteFile(o.Output, buf.Bytes(), 0o644)
}
