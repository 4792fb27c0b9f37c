package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/images/store/backend"
)

func init() { register(newImageCommand) }

// imageSubcommands are the `ingot image …` commands, one file each
// (cmd_image_<name>.go), added from init like the top-level ones.
var imageSubcommands []func(*App) *cobra.Command

func registerImage(f func(*App) *cobra.Command) { imageSubcommands = append(imageSubcommands, f) }

func newImageCommand(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Import, export, list, print and verify images in the store",
		Long: `Images live in a content-addressed store (--store, else $INGOT_STORE, else
/var/lib/ingot/store as root, ~/.local/share/ingot/store otherwise). A store
given as an http:// or https:// URL is read over HTTP (read-only).

REF names an image: its digest, a unique prefix of it (at least 4 hex
digits), NAME:TAG, or the path of a tar file (.tar, .tar.gz, .tgz, .tar.zst),
which is imported first.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("ingot image: missing subcommand")}
		},
	}
	for _, f := range imageSubcommands {
		cmd.AddCommand(f(a))
	}
	return cmd
}

// openStore opens the store: a directory, or a read-only HTTP store when
// the --store value is a URL.
func (a *App) openStore(opts ...store.Option) (*store.Store, error) {
	dir := a.StoreDir()
	if strings.HasPrefix(dir, "http://") || strings.HasPrefix(dir, "https://") {
		b, err := backend.HTTPMirrors([]string{dir})
		if err != nil {
			return nil, err
		}
		return store.New(b, opts...), nil
	}
	return store.Open(dir, opts...)
}

// isTarPath tells a REF that names a tar file from a digest or name:tag.
func isTarPath(ref string) bool {
	if strings.Contains(ref, "/") || images.CompressionFromName(ref) != images.CompressNone {
		return true
	}
	return strings.HasSuffix(ref, ".tar")
}

// resolveImage turns REF into an image digest, importing a tar path first.
func (a *App) resolveImage(ctx context.Context, s *store.Store, ref string) (images.Digest, error) {
	if !isTarPath(ref) {
		return s.Resolve(ctx, ref)
	}
	f, err := os.Open(ref)
	if err != nil {
		return images.Digest{}, fmt.Errorf("image %s: %w", ref, err)
	}
	defer f.Close()
	d, err := s.Import(ctx, f, store.ImportOptions{Name: ref})
	if err != nil {
		return d, fmt.Errorf("importing %s: %w", ref, err)
	}
	a.Log.Debug("imported", "file", ref, "digest", d)
	return d, nil
}
