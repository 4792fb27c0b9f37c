package imagecmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/differ"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/images/view"
	"github.com/ingotfleet/ingot/internal/atomicfile"
	"github.com/ingotfleet/ingot/internal/cli"
)

func init() { cli.Register(newDiffCommand) }

// DiffOptions are the flags of `ingot diff`.
type DiffOptions struct {
	Format       string
	JSON         bool
	Output       string
	Context      int
	Mtime        bool
	MaxDiffSize  int64
	MaxDiffLines int
}

// AddFlags puts the options on a command.
func (o *DiffOptions) AddFlags(cmd *cobra.Command) {
	def := differ.DefaultOptions()
	f := cmd.Flags()
	f.StringVar(&o.Format, "format", "text", "report format: text, json or html")
	f.BoolVar(&o.JSON, "json", false, "same as --format json")
	f.StringVarP(&o.Output, "output", "o", "", "write the report to `FILE` instead of standard output")
	f.IntVar(&o.Context, "context", def.Context, "lines of context in unified diffs")
	f.BoolVar(&o.Mtime, "mtime", false, "report mtime changes (by default paths that differ only in mtime are counted, not shown)")
	f.Int64Var(&o.MaxDiffSize, "max-diff-size", def.MaxDiffSize, "no unified diff for files (or decompressed .gz contents) over this many `bytes`")
	f.IntVar(&o.MaxDiffLines, "max-diff-lines", def.MaxDiffLines, "cut each unified diff after this many `lines`")
}

func (o *DiffOptions) options() (differ.Options, differ.Format, error) {
	format := o.Format
	if o.JSON {
		format = "json"
	}
	f, err := differ.ParseFormat(format)
	if err != nil {
		return differ.Options{}, 0, cli.UsageError{Err: fmt.Errorf("--format: %w", err)}
	}
	if o.Context < 0 || o.MaxDiffSize < 0 || o.MaxDiffLines < 0 {
		return differ.Options{}, 0, cli.UsageError{Err: errors.New("--context, --max-diff-size and --max-diff-lines take numbers >= 0")}
	}
	return differ.Options{Mtime: o.Mtime, Context: o.Context, MaxDiffSize: o.MaxDiffSize, MaxDiffLines: o.MaxDiffLines}, f, nil
}

func newDiffCommand(a *cli.App) *cobra.Command {
	var o DiffOptions
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Report what changed between two images",
		Long: `Compare two images and report every path added, removed or changed, with
each changed attribute (type, mode, owner, size, content, link target,
device, hardlink group, xattrs with capabilities decoded), grouped by the
package that owns the path, package version changes and their changelog
entries first, and unified diffs of text files (also inside .gz files).

A and B are image references (digest, digest prefix or name:tag in the
store), image tars (.tar, .tar.gz, .tar.zst) or directories.

Paths that differ only in mtime are counted but not shown unless --mtime is
given. Exit status like diff(1): 0 identical, 1 different, 2 trouble.`,
		Args: cli.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd.Context(), a, &o, args[0], args[1])
		},
	}
	o.AddFlags(cmd)
	return cmd
}

// diffMemoryLimit is ingot diff's soft memory limit unless GOMEMLIMIT is set.
const diffMemoryLimit = 32 << 20

func runDiff(ctx context.Context, a *cli.App, o *DiffOptions, argA, argB string) error {
	opts, format, err := o.options()
	if err != nil {
		return err
	}
	if a.Getenv("GOMEMLIMIT") == "" {
		// The differ's live data is small (two manifests, the changed
		// texts); a soft limit keeps the garbage from growing the
		// process on CI machines, for a little more GC work.
		debug.SetMemoryLimit(diffMemoryLimit)
	}
	// Read both images at once (each is one pass over a tar or a tree).
	var srcA, srcB view.View
	var errA, errB error
	done := make(chan struct{})
	go func() {
		defer close(done)
		srcB, errB = openImage(ctx, a, argB)
	}()
	srcA, errA = openImage(ctx, a, argA)
	<-done
	if errA != nil {
		return errA
	}
	if errB != nil {
		return errB
	}
	r, err := differ.Diff(ctx, srcA, srcB, opts)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := r.Write(&buf, format); err != nil {
		return err
	}
	if o.Output == "" || o.Output == "-" {
		if _, err := a.Stdout.Write(buf.Bytes()); err != nil {
			return err
		}
	} else if err := atomicfile.WriteFile(o.Output, buf.Bytes(), 0o644); err != nil {
		return err
	}
	if !r.Identical() {
		return fmt.Errorf("%w: the images differ", cli.ErrNegative)
	}
	return nil
}

// openImage opens A or B of `ingot diff`: a directory or tar by path, else
// an image reference in the store.
func openImage(ctx context.Context, a *cli.App, arg string) (view.View, error) {
	if _, err := os.Stat(arg); err == nil {
		return differ.Open(ctx, arg) // its errors name the file
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("image %s: %w", arg, err)
	}
	return openStoreImage(ctx, a, arg)
}

// openStoreImage opens an image reference (digest, unique digest prefix,
// name:tag) in the store. A store that does not exist is not created.
func openStoreImage(ctx context.Context, a *cli.App, ref string) (view.View, error) {
	dir := a.StoreDir()
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("image %s: not a file or directory, and there is no image store at %s to look it up in", ref, dir)
	}
	st, err := store.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	s, err := view.OpenStore(ctx, st, ref)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return s, nil
}
