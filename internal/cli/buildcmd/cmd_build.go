package buildcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/builder"
	"github.com/ingotfleet/ingot/builder/debrepo"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/atomicfile"
	"github.com/ingotfleet/ingot/internal/cli"
)

func init() { cli.Register(newBuildCommand) }

// BuildOptions are the flags of `ingot build`.
type BuildOptions struct {
	Lock     string
	Name     string
	Output   string
	Check    bool
	Cache    string
	WorkDir  string
	JSON     bool
	Progress string
	Verbose  bool
}

// AddFlags registers the options on cmd.
func (o *BuildOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.Lock, "lock", "", "lock file (default: SPEC with .lock instead of .yaml)")
	f.StringVar(&o.Name, "name", "", "image reference NAME:TAG to set in the store (default: the spec's name, tag latest)")
	f.StringVarP(&o.Output, "output", "o", "", "also write the image as a tar (.tar, .tar.gz or .tar.zst) with its manifest, package list, SBOM and provenance beside it")
	f.BoolVar(&o.Check, "check", false, "build twice under varied conditions and name the first path that differs (stores nothing)")
	f.StringVar(&o.Cache, "cache", "", "download cache of .deb files (default $INGOT_CACHE, else /var/cache/ingot as root, else ~/.cache/ingot)")
	f.StringVar(&o.WorkDir, "work-dir", "", "directory the root is built in (default $TMPDIR)")
	f.BoolVar(&o.JSON, "json", false, "print a JSON result on stdout")
	f.StringVar(&o.Progress, "progress", "auto", "progress display on stderr: auto (bars on a terminal, lines otherwise), bars, plain or none")
	f.BoolVarP(&o.Verbose, "verbose", "v", false, "show the output of maintainer scripts and customize commands")
}

func newBuildCommand(a *cli.App) *cobra.Command {
	var o BuildOptions
	cmd := &cobra.Command{
		Use:   "build SPEC",
		Short: "Build a reproducible image from a spec and its lock, and import it into the store",
		Long: `Build downloads exactly the locked .deb files into a content-addressed
cache (every hash checked), unpacks them in parallel, writes the dpkg
database, runs the maintainer scripts in a hermetic sandbox (no network,
fixed environment, SOURCE_DATE_EPOCH), applies the overlay, customize
commands, excludes, the noise list and normalisation, and imports the
result into the image store. It prints the image digest.

Beside the image it stores a build record (name.build:tag): the manifest,
the package list, an SPDX 2.3 SBOM and the build provenance. With -o the
image is also written as a deterministic tar with those files beside it.

--check builds twice under varied conditions and names the first path
that differs (exit 1), or prints OK. Building needs root.`,
		Args: cli.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd.Context(), a, o, args[0])
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func runBuild(ctx context.Context, a *cli.App, o BuildOptions, specPath string) error {
	switch o.Progress {
	case "auto", "bars", "plain", "none":
	default:
		return cli.UsageError{Err: fmt.Errorf("--progress: %q is not auto, bars, plain or none", o.Progress)}
	}
	if o.Check && o.Output != "" {
		return cli.UsageError{Err: errors.New("--check stores nothing and writes no tar: leave out -o")}
	}
	if os.Geteuid() != 0 {
		return errors.New("ingot build needs root: it unpacks files owned by other users, makes device nodes and runs maintainer scripts in namespaces")
	}
	lockPath := o.Lock
	if lockPath == "" {
		lockPath = defaultLockPath(specPath)
	}
	prog := newProgress(a.Stderr, o.Progress)
	defer prog.finish()
	cache := &debrepo.Cache{Dir: filepath.Join(a.CacheDir(o.Cache), "debs")}
	var dlDone int
	p, err := builder.Prepare(ctx, specPath, lockPath, cache, func(e debrepo.Event) {
		if e.Done {
			dlDone++
			prog.show(builder.Event{Phase: "download", Done: dlDone, Item: e.Item.Name})
		}
	})
	if err != nil {
		return err
	}
	opts := builder.Options{WorkDir: o.WorkDir, Progress: prog.show, Log: a.Log}
	if o.Verbose {
		opts.ScriptOutput = a.Stderr
	}
	if o.Check {
		return runCheck(ctx, a, o, p, opts, prog)
	}
	return buildImage(ctx, a, o, p, opts, prog)
}

// buildImage builds the prepared input, stores the image (and writes the
// tar and its side files with -o) and prints its digest.
func buildImage(ctx context.Context, a *cli.App, o BuildOptions, p *builder.Prepared, opts builder.Options, prog *progress) (err error) {
	name, tag := p.Spec.Name, "latest"
	if o.Name != "" {
		var err error
		if name, tag, err = store.ParseRef(o.Name); err != nil {
			return cli.UsageError{Err: fmt.Errorf("--name: %w", err)}
		}
	}
	st, err := store.Open(a.StoreDir())
	if err != nil {
		return err
	}
	defer cli.Close(&err, st)
	r, err := builder.BuildRoot(ctx, p.Input, opts)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := r.Cleanup(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	meta := builder.Meta{Name: name, Tag: tag, IngotVersion: cli.Version(), SpecSHA256: p.SpecSHA256,
		LockSHA256: p.LockSHA256, DownloadURL: builder.DownloadURLs(p.Lock)}
	var tarFile *atomicfile.File
	if o.Output != "" {
		if tarFile, err = atomicfile.Create(o.Output, 0o644); err != nil {
			return err
		}
		defer tarFile.Abort()
	}
	var tarOut io.Writer
	if tarFile != nil {
		tarOut = tarFile
	}
	img, err := builder.Finish(ctx, r, p.Input, meta, st, tarOut, compression.CompressionFromName(o.Output), prog.show)
	if err != nil {
		return err
	}
	if tarFile != nil {
		if err := tarFile.Commit(); err != nil {
			return err
		}
		for what, path := range builder.SideFiles(o.Output) {
			if err := atomicfile.WriteFile(path, img.SideFile(what), 0o644); err != nil {
				return err
			}
		}
	}
	prog.finish()
	if o.JSON {
		enc := json.NewEncoder(a.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Digest   string `json:"digest"`
			Ref      string `json:"ref"`
			Record   string `json:"record"`
			Paths    int    `json:"paths"`
			Packages int    `json:"packages"`
			Output   string `json:"output,omitempty"`
		}{img.Digest.String(), name + ":" + tag, img.Record.String(), len(img.Manifest.Entries),
			strings.Count(string(img.Packages), "\n"), o.Output})
	}
	a.Println(img.Digest)
	a.Log.Info("built", "ref", name+":"+tag, "paths", len(img.Manifest.Entries),
		"packages", strings.Count(string(img.Packages), "\n"), "record", builder.RecordRef(name, tag))
	return nil
}

func runCheck(ctx context.Context, a *cli.App, o BuildOptions, p *builder.Prepared, opts builder.Options, prog *progress) error {
	res, err := builder.Check(ctx, p.Input, opts)
	if err != nil {
		return err
	}
	prog.finish()
	out := cli.NewOutput(a.Stdout)
	if o.JSON {
		enc := json.NewEncoder(a.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			OK        bool           `json:"ok"`
			A         string         `json:"first"`
			B         string         `json:"second"`
			Variation string         `json:"variation"`
			Deltas    []images.Delta `json:"deltas"`
		}{res.OK(), res.A.String(), res.B.String(), builder.Variation, res.Deltas}); err != nil {
			return err
		}
	} else if res.OK() {
		out.Printf("OK %s\n(two builds, varied: %s)\n", res.A, builder.Variation)
	} else {
		first := res.Deltas[0]
		out.Printf("DIFFERS: first differing path /%s (%s", images.Escape(first.Path), first.Kind)
		if len(first.Keys) > 0 {
			out.Printf(": %s", strings.Join(first.Keys, ", "))
		}
		out.Printf(")\n%d paths differ between %s and %s\n", len(res.Deltas), res.A, res.B)
		for i, d := range res.Deltas {
			if i == 20 {
				out.Printf("  … and %d more\n", len(res.Deltas)-20)
				break
			}
			out.Printf("  /%s %s %s\n", images.Escape(d.Path), d.Kind, strings.Join(d.Keys, ","))
		}
	}
	if !res.OK() {
		return fmt.Errorf("builds differ: %w", cli.ErrNegative)
	}
	return nil
}

// progress shows build events on stderr: one redrawn bar line on a
// terminal, a plain line per phase change (and every 10%) otherwise.
type progress struct {
	mu       sync.Mutex
	w        *cli.Output
	mode     string
	last     string
	lastPct  int
	start    time.Time
	drawn    bool
	finished bool
}

func newProgress(w io.Writer, mode string) *progress {
	if mode == "auto" {
		mode = "plain"
		if cli.IsTerminal(w) {
			mode = "bars"
		}
	}
	// Progress is best effort: a failed write to stderr has nowhere to be reported.
	return &progress{w: cli.NewOutput(w), mode: mode, start: time.Now(), lastPct: -1}
}

func (p *progress) show(e builder.Event) {
	if p == nil || p.mode == "none" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pct := -1
	if e.Total > 0 {
		pct = e.Done * 100 / e.Total
	}
	switch p.mode {
	case "bars":
		const width = 30
		bar := ""
		if pct >= 0 {
			n := pct * width / 100
			bar = "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + fmt.Sprintf("] %3d%% %d/%d", pct, e.Done, e.Total)
		}
		item := e.Item
		if len(item) > 40 {
			item = item[:40]
		}
		p.w.Printf("\r\033[K%-9s %s %s", e.Phase, bar, item)
		p.drawn = true
	default:
		if e.Phase == p.last && (pct < 0 || pct/10 == p.lastPct/10) && pct != 100 {
			return
		}
		if e.Phase == p.last && pct == p.lastPct {
			return
		}
		el := time.Since(p.start).Seconds()
		if pct >= 0 {
			p.w.Printf("%6.1fs %s %d/%d (%d%%)\n", el, e.Phase, e.Done, e.Total, pct)
		} else {
			p.w.Printf("%6.1fs %s\n", el, e.Phase)
		}
	}
	p.last, p.lastPct = e.Phase, pct
}

func (p *progress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn && !p.finished {
		p.w.Println()
	}
	p.finished = true
	p.drawn = false
}
