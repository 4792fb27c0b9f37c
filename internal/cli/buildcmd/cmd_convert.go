package buildcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/builder/rpm2deb"
	"github.com/ingotfleet/ingot/builder/rpm2deb/provides"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/images/view"
	"github.com/ingotfleet/ingot/internal/cli"
)

func init() { cli.Register(newConvertCommand) }

func newConvertCommand(a *cli.App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "convert",
		Short: "Convert packages from other formats",
	}
	cmd.AddCommand(newRPM2DebCommand(a))
	return cmd
}

// RPM2DebOptions are the flags of `ingot convert rpm2deb`.
type RPM2DebOptions struct {
	OutDir     string
	Target     string
	TargetRoot string
	Strict     bool
	JSON       bool
	Compress   string
	Maintainer string
	Lintian    bool
}

// AddFlags registers the options on cmd.
func (o *RPM2DebOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.OutDir, "output", "o", ".", "directory for the .deb files")
	f.StringVar(&o.Target, "target", "", "image (digest, prefix or name:tag) whose dpkg database resolves file and soname dependencies")
	f.StringVar(&o.TargetRoot, "target-root", "", "root directory whose dpkg database resolves file and soname dependencies")
	f.BoolVar(&o.Strict, "strict", false, "fail on scriptlets dpkg cannot run (triggers, %pretrans, %posttrans, Lua) and on unresolved dependencies")
	f.BoolVar(&o.JSON, "json", false, "print the reports as JSON")
	f.StringVar(&o.Compress, "compress", "xz", "compression of the .deb members: xz or gzip")
	f.StringVar(&o.Maintainer, "maintainer", "", `Maintainer field ("Name <email>"), instead of the RPM's Packager or Vendor`)
	f.BoolVar(&o.Lintian, "lintian", false, "run lintian on each .deb and add its tags to the report (exit 1 on lintian errors)")
}

func newRPM2DebCommand(a *cli.App) *cobra.Command {
	var o RPM2DebOptions
	cmd := &cobra.Command{
		Use:   "rpm2deb FILE.rpm...",
		Short: "Convert RPM packages into Debian packages, keeping changelogs, epochs and dependencies",
		Long: `Convert RPM packages into .deb files, keeping every changelog entry, the
epoch and release, dependencies (file and soname dependencies resolved
against a target's dpkg database), conffiles and scriptlets, and report
everything that was mapped, dropped or approximated. The same RPM always
gives the same .deb bytes (mtimes from the RPM's build time, or
SOURCE_DATE_EPOCH when set).`,
		Args: cli.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRPM2Deb(cmd, a, o, args)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func runRPM2Deb(cmd *cobra.Command, a *cli.App, o RPM2DebOptions, args []string) (err error) {
	ctx := cmd.Context()
	comp, err := rpm2deb.ParseCompression(o.Compress)
	if err != nil {
		return cli.UsageError{Err: fmt.Errorf("--compress: %w", err)}
	}
	if o.Target != "" && o.TargetRoot != "" {
		return cli.UsageError{Err: fmt.Errorf("--target and --target-root exclude each other")}
	}
	opts := rpm2deb.Options{
		OutDir:      o.OutDir,
		Compression: comp,
		Strict:      o.Strict,
		Maintainer:  o.Maintainer,
		Log:         a.Log,
	}
	if s := a.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return cli.UsageError{Err: fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a Unix time", s)}
		}
		opts.SourceDateEpoch = &v
	}
	switch {
	case o.TargetRoot != "":
		opts.Resolver = provides.NewRootResolver(o.TargetRoot)
	case o.Target != "":
		var st *store.Store
		if opts.Resolver, st, err = targetResolver(ctx, a, o.Target); err != nil {
			return err
		}
		defer cli.Close(&err, st) // err is the named result: a failed Close is returned
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	var reports []*rpm2deb.Report
	lintErrors := 0
	// A bad RPM does not stop the others: each is converted or refused on
	// its own, and the refusals are the command's error at the end.
	var failed []error
	for _, in := range args {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rep, err := rpm2deb.Convert(ctx, in, opts)
		if err != nil {
			if len(args) == 1 {
				return err
			}
			a.Log.Error("not converted", "input", in, "err", err)
			failed = append(failed, err)
			continue
		}
		if o.Lintian {
			tags, err := rpm2deb.Lintian(ctx, rep.Output)
			if err != nil {
				return err
			}
			rep.Lintian = tags
			for _, t := range tags {
				if t.Severity == "E" {
					lintErrors++
				}
			}
		}
		reports = append(reports, rep)
		if !o.JSON {
			if err := rep.WriteText(a.Stdout); err != nil {
				return err
			}
		}
	}
	if o.JSON {
		enc := json.NewEncoder(a.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(reports); err != nil {
			return err
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d RPMs not converted: %w", len(failed), len(args), errors.Join(failed...))
	}
	if lintErrors > 0 {
		return fmt.Errorf("lintian reported %d error(s): %w", lintErrors, cli.ErrNegative)
	}
	return nil
}

// targetResolver resolves dependencies against an image in the store:
// its dpkg database is read straight from the image's objects. The store
// is returned to be closed once the conversion is done.
func targetResolver(ctx context.Context, a *cli.App, ref string) (rpm2deb.Resolver, *store.Store, error) {
	st, err := store.Open(a.StoreDir())
	if err != nil {
		return nil, nil, fmt.Errorf("--target %s: %w", ref, err)
	}
	d, err := st.Resolve(ctx, ref)
	if err == nil {
		var m *images.Manifest
		if m, err = st.Manifest(ctx, d); err == nil {
			name := "image " + d.String()
			return provides.NewDpkgResolver(view.NewFS(ctx, view.NewStore(name, m, st)), name), st, nil
		}
	}
	return nil, nil, errors.Join(fmt.Errorf("--target %s: %w", ref, err), st.Close())
}
