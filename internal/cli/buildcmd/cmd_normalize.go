package buildcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/builder/normalize"
	"github.com/ingotfleet/ingot/internal/cli"
)

func init() { cli.Register(newNormalizeCommand) }

// NormalizeOptions are the flags of `ingot normalize`.
type NormalizeOptions struct {
	SourceDateEpoch int64
	NoClamp         bool
	Noise           bool
	JSON            bool
}

// AddFlags registers the options on cmd.
func (o *NormalizeOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.Int64Var(&o.SourceDateEpoch, "source-date-epoch", -1, "time to clamp to (default $SOURCE_DATE_EPOCH; required)")
	f.BoolVar(&o.NoClamp, "no-clamp", false, "rewrite file contents only; leave mtimes alone")
	f.BoolVar(&o.Noise, "noise", false, "also apply the noise list (PATH must be the root of an image tree)")
	f.BoolVar(&o.JSON, "json", false, "print what changed as JSON")
}

func newNormalizeCommand(a *cli.App) *cobra.Command {
	var o NormalizeOptions
	cmd := &cobra.Command{
		Use:   "normalize PATH...",
		Short: "Make files and trees reproducible: gzip headers, .pyc headers, ar and zip timestamps, mtimes",
		Long: `Normalize rewrites, in place, what records when a file was made: gzip
headers (mtime, file name, OS byte), timestamp-based Python .pyc headers
(made to match the source file's clamped mtime and size), ar member headers
and zip/jar timestamps; then clamps every mtime to SOURCE_DATE_EPOCH. A
PATH may be a file or a directory (walked without following symlinks).
With --noise, the per-build noise list (docs/noise.md) is applied first.`,
		Args: cli.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNormalize(cmd.Context(), a, o, args)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func runNormalize(ctx context.Context, a *cli.App, o NormalizeOptions, paths []string) error {
	sde := o.SourceDateEpoch
	if sde < 0 {
		v := a.Getenv("SOURCE_DATE_EPOCH")
		if v == "" {
			return cli.UsageError{Err: fmt.Errorf("no time to clamp to: give --source-date-epoch or set SOURCE_DATE_EPOCH")}
		}
		var err error
		if sde, err = strconv.ParseInt(v, 10, 64); err != nil || sde < 0 {
			return cli.UsageError{Err: fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", v)}
		}
	}
	type result struct {
		Path    string                   `json:"path"`
		Changes []normalize.Change       `json:"changes"`
		Clamped int                      `json:"clamped"`
		Noise   []normalize.NoiseApplied `json:"noise,omitempty"`
	}
	var results []result
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		res := result{Path: p, Changes: []normalize.Change{}}
		if fi.IsDir() {
			if o.Noise {
				if res.Noise, err = normalize.ApplyNoise(ctx, p, normalize.NoiseList, sde); err != nil {
					return err
				}
			}
			rep, err := normalize.Tree(ctx, p, normalize.Options{SourceDateEpoch: sde, NoClamp: o.NoClamp})
			if err != nil {
				return err
			}
			res.Changes, res.Clamped = append(res.Changes, rep.Changes...), rep.Clamped
		} else {
			changed, err := normalize.File(p, sde)
			if err != nil {
				return err
			}
			if changed {
				res.Changes = append(res.Changes, normalize.Change{Path: p, Kind: "content"})
			}
		}
		results = append(results, res)
	}
	if o.JSON {
		enc := json.NewEncoder(a.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	for _, r := range results {
		for _, c := range r.Changes {
			a.Printf("%s: %s normalized\n", c.Path, c.Kind)
		}
		for _, n := range r.Noise {
			a.Printf("%s: %s\n", n.Path, n.Action)
		}
		if r.Clamped > 0 {
			a.Printf("%s: %d mtimes clamped\n", r.Path, r.Clamped)
		}
	}
	return nil
}
