package imagecmd

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/cli"
)

func init() { registerImage(newImageImportCommand) }

type imageImportOptions struct {
	name      string
	json      bool
	level     string
	deltaFrom string
}

// zstdLevels are the --level names of the object compression levels.
var zstdLevels = map[string]zstd.EncoderLevel{
	"fastest": zstd.SpeedFastest,
	"default": zstd.SpeedDefault,
	"better":  zstd.SpeedBetterCompression,
	"best":    zstd.SpeedBestCompression,
}

func newImageImportCommand(a *cli.App) *cobra.Command {
	var o imageImportOptions
	cmd := &cobra.Command{
		Use:   "import FILE.tar[.gz|.zst]|DIR",
		Short: "Import a tar of a root filesystem into the store and print its digest",
		Long: `Import reads a tar (plain, gzip or zstd, detected from its bytes; "-" reads
standard input), refuses hostile entries (absolute paths, "..", writes
through symlinks, …) naming them, stores every file's content in chunks and
prints the image digest. --name also points NAME:TAG at it. A directory is
recorded as it is (lstat, xattrs, hardlinks; owner names from its own
etc/passwd and etc/group). --delta-from REF then precomputes sub-file deltas
from image REF to the new one (as ingot image delta does), so hosts at REF
fetch only those.`,
		Args: cli.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runImageImport(cmd, a, o, args[0]) },
	}
	cmd.Flags().StringVar(&o.name, "name", "", "also set the reference `NAME:TAG` to the image")
	cmd.Flags().BoolVar(&o.json, "json", false, "print {\"digest\":…, \"ref\":…} as JSON")
	cmd.Flags().StringVar(&o.deltaFrom, "delta-from", "", "also precompute deltas from image `REF` to the new image")
	cmd.Flags().StringVar(&o.level, "level", "default", "zstd level of new objects: fastest, default, better or best (names and digests do not depend on it)")
	return cmd
}

func runImageImport(cmd *cobra.Command, a *cli.App, o imageImportOptions, file string) (err error) {
	ctx := cmd.Context()
	if o.name != "" {
		if _, _, err := store.ParseRef(o.name); err != nil {
			return cli.UsageError{Err: fmt.Errorf("--name: %w", err)}
		}
	}
	level, ok := zstdLevels[o.level]
	if !ok {
		return cli.UsageError{Err: fmt.Errorf("--level %q: want fastest, default, better or best", o.level)}
	}
	if fi, err := os.Stat(file); err == nil && fi.IsDir() {
		return runImageImportDir(cmd, a, o, file, level)
	}
	var r io.Reader = a.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	s, err := a.OpenStore(store.WithLevel(level))
	if err != nil {
		return err
	}
	defer cli.Close(&err, s)
	phase, phaseStart := "files", time.Now()
	progress := func(p store.Progress) {
		if p.Phase != phase {
			a.Log.Debug("import phase done", "phase", phase, "files", p.Done, "took", time.Since(phaseStart).Round(time.Millisecond))
			phase, phaseStart = p.Phase, time.Now()
		}
	}
	d, err := s.Import(ctx, r, store.ImportOptions{Name: file, Progress: progress})
	progress(store.Progress{Phase: "end"})
	if err != nil {
		return fmt.Errorf("importing %s: %w", file, err)
	}
	return importDone(cmd, a, s, o, file, d)
}

// importDone sets the ref, computes deltas and prints the digest.
func importDone(cmd *cobra.Command, a *cli.App, s *store.Store, o imageImportOptions, file string, d images.Digest) error {
	ctx := cmd.Context()
	if o.name != "" {
		if err := s.SetRef(ctx, o.name, d); err != nil {
			return err
		}
	}
	if o.deltaFrom != "" {
		from, err := a.ResolveImage(ctx, s, o.deltaFrom)
		if err != nil {
			return fmt.Errorf("--delta-from: %w", err)
		}
		st, err := s.ComputeDeltas(ctx, from, d)
		if err != nil {
			return fmt.Errorf("deltas from %s: %w", o.deltaFrom, err)
		}
		a.Log.Info("deltas", "from", from, "files", st.Files, "deltas", st.Deltas, "delta_bytes", st.DeltaBytes, "chunk_bytes", st.ChunkBytes)
	}
	a.Log.Info("imported", "file", file, "digest", d, "ref", o.name)
	if o.json {
		return json.NewEncoder(a.Stdout).Encode(struct {
			Digest images.Digest `json:"digest"`
			Ref    string        `json:"ref,omitempty"`
		}{d, o.name})
	}
	_, err := fmt.Fprintln(a.Stdout, d)
	return err
}

// runImageImportDir records a directory tree as an image.
func runImageImportDir(cmd *cobra.Command, a *cli.App, o imageImportOptions, dir string, level zstd.EncoderLevel) (err error) {
	s, err := a.OpenStore(store.WithLevel(level))
	if err != nil {
		return err
	}
	defer cli.Close(&err, s)
	d, _, err := s.ImportDir(cmd.Context(), dir, images.WalkOptions{})
	if err != nil {
		return err
	}
	return importDone(cmd, a, s, o, dir, d)
}
