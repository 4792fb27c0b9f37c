package buildcmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/builder"
	"github.com/ingotfleet/ingot/builder/debrepo"
	"github.com/ingotfleet/ingot/builder/pkgbuild"
	"github.com/ingotfleet/ingot/builder/spec"
	"github.com/ingotfleet/ingot/internal/atomicfile"
	"github.com/ingotfleet/ingot/internal/cli"
)

func init() { cli.Register(newPkgCommand) }

func newPkgCommand(a *cli.App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pkg",
		Short: "Build Debian packages from source, hermetically and reproducibly",
	}
	cmd.AddCommand(newPkgBuildCommand(a))
	return cmd
}

// PkgBuildOptions are the flags of `ingot pkg build`.
type PkgBuildOptions struct {
	Base      string
	Lock      string
	Output    string
	FromRepo  bool
	Check     bool
	Previous  string
	Cache     string
	WorkDir   string
	RootCache string
	AptRoot   string
	Progress  string
	Verbose   bool
}

// AddFlags registers the options on cmd.
func (o *PkgBuildOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.Base, "base", "", "spec of the base image: its repositories and package set (required)")
	f.StringVar(&o.Lock, "lock", "", "build lock: used when it exists and matches, else resolved and written (default: OUT/SOURCE_VERSION_ARCH.build-lock, always resolved)")
	f.StringVarP(&o.Output, "output", "o", ".", "directory for the .deb files, the build lock and the build record")
	f.BoolVar(&o.FromRepo, "from-repo", false, "SOURCE is NAME or NAME=VERSION of a source package in the base spec's repositories (checked against their signed Sources index)")
	f.BoolVar(&o.Check, "check", false, "build twice, the second time under varied conditions, and name the first file that differs (exit 1)")
	f.StringVar(&o.Previous, "previous", "", "an older .deb of the package: if the new one has the same content but for timestamps and version, say so and exit 4")
	f.StringVar(&o.Cache, "cache", "", "download cache (default $INGOT_CACHE, else /var/cache/ingot as root)")
	f.StringVar(&o.WorkDir, "work-dir", "", "directory the build root is made in (default $TMPDIR)")
	f.StringVar(&o.RootCache, "root-cache", "", "keep the build root of each lock here and copy it for the next build of the same lock")
	f.StringVar(&o.AptRoot, "apt-root", "/", "root whose apt sources are used when the base spec names no repository")
	f.StringVar(&o.Progress, "progress", "auto", "progress display on stderr: auto, bars, plain or none")
	f.BoolVarP(&o.Verbose, "verbose", "v", false, "show the build log")
}

func newPkgBuildCommand(a *cli.App) *cobra.Command {
	var o PkgBuildOptions
	cmd := &cobra.Command{
		Use:   "build SOURCE",
		Short: "Build the binary packages of a source package (.dsc or tree) in a hermetic sandbox",
		Long: `Build resolves the source's build dependencies (Build-Depends, -Arch and
-Indep with alternatives, architecture and profile restrictions, and the
Build-Conflicts) with the base spec's package set and build-essential
into a build lock, makes the build root from it, and runs
dpkg-buildpackage -b in the sandbox: no network (loopback only), the
fixed build path /build/SOURCE-UPSTREAMVERSION, SOURCE_DATE_EPOCH from
debian/changelog, LC_ALL=C.UTF-8, TZ=UTC, umask 022, a fixed host name
and DEB_BUILD_OPTIONS=nocheck. The .deb files, the build lock and a build
record (SOURCE_VERSION_ARCH.ingot-buildinfo) are written to -o.

Exit codes: 0 built (--check: both builds identical); 1 --check found a
difference; 2 error (the build failed); 3 usage; 4 --previous: the new
package equals the old one but for timestamps and version.`,
		Args: cli.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPkgBuild(cmd.Context(), a, o, args[0])
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func runPkgBuild(ctx context.Context, a *cli.App, o PkgBuildOptions, source string) error {
	switch o.Progress {
	case "auto", "bars", "plain", "none":
	default:
		return cli.UsageError{Err: fmt.Errorf("--progress: %q is not auto, bars, plain or none", o.Progress)}
	}
	if o.Base == "" {
		return cli.UsageError{Err: errors.New("--base SPEC is required")}
	}
	if o.Check && o.Previous != "" {
		return cli.UsageError{Err: errors.New("--check and --previous do not go together")}
	}
	if os.Geteuid() != 0 {
		return errors.New("ingot pkg build needs root: it builds a root filesystem and runs the build in namespaces")
	}
	s, err := spec.Load(o.Base)
	if err != nil {
		return err
	}
	arch := s.Architectures[0]
	cacheDir := a.CacheDir(o.Cache)
	cache := &debrepo.Cache{Dir: filepath.Join(cacheDir, "debs")}
	var idx *debrepo.Index
	index := func() (*debrepo.Index, error) {
		if idx != nil {
			return idx, nil
		}
		repos, err := pkgbuild.Repos(s, o.AptRoot)
		if err != nil {
			return nil, err
		}
		c := &debrepo.Client{}
		idx, err = c.FetchIndex(ctx, repos, s.Architectures)
		return idx, err
	}
	src, err := loadPkgSource(ctx, o, source, cache, cacheDir, index)
	if err != nil {
		return err
	}
	br, err := src.BuildRelations(arch)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.Output, 0o755); err != nil {
		return err
	}
	lockPath := o.Lock
	if lockPath == "" {
		lockPath = filepath.Join(o.Output, src.ID()+"_"+arch+".build-lock")
	}
	l, lockData, err := pkgLock(ctx, a, o, s, src, br, lockPath, index)
	if err != nil {
		return err
	}
	paths, err := builder.FetchLock(ctx, s, l, cache, nil)
	if err != nil {
		return err
	}
	prog := newProgress(a.Stderr, o.Progress)
	defer prog.finish()
	opts := pkgbuild.Options{WorkDir: o.WorkDir, RootCache: o.RootCache, Log: a.Log, Progress: prog.show}
	if o.Verbose {
		opts.Output = a.Stderr
	}
	if o.Check {
		return runPkgCheck(ctx, a, src, l, lockData, paths, arch, o, opts, prog)
	}
	res, err := pkgbuild.Build(ctx, src, l, lockData, paths, arch, o.Output, pkgbuild.Fixed, opts)
	if err != nil {
		return err
	}
	prog.finish()
	for _, d := range res.Debs {
		fmt.Fprintf(a.Stdout, "%s  %s\n", d.SHA256, d.Path)
	}
	a.Log.Info("built", "source", src.Name, "version", src.Version, "packages", len(res.Debs), "lock", lockPath, "record", res.Record)
	if o.Previous != "" {
		return comparePrevious(a, o.Previous, res)
	}
	return nil
}

// loadPkgSource loads the source package to build: fetched from the
// mirror (--from-repo NAME[=VERSION]), a .dsc, or an unpacked tree.
func loadPkgSource(ctx context.Context, o PkgBuildOptions, source string, cache *debrepo.Cache, cacheDir string, index func() (*debrepo.Index, error)) (*pkgbuild.Source, error) {
	var src *pkgbuild.Source
	var err error
	switch {
	case o.FromRepo:
		name, version, _ := strings.Cut(source, "=")
		ix, err := index()
		if err != nil {
			return nil, err
		}
		dsc, err := pkgbuild.FetchSource(ctx, ix, cache, name, version, filepath.Join(cacheDir, "sources", name))
		if err != nil {
			return nil, err
		}
		if src, err = pkgbuild.LoadDsc(dsc); err != nil {
			return nil, err
		}
	case strings.HasSuffix(source, ".dsc"):
		if src, err = pkgbuild.LoadDsc(source); err != nil {
			return nil, err
		}
	default:
		if src, err = pkgbuild.LoadTree(source); err != nil {
			return nil, err
		}
	}
	return src, nil
}

// pkgLock reads the build lock at path when it exists and matches the
// build, and resolves and writes it otherwise (a lock named with --lock
// that does not match is refused, as ingot build refuses a stale lock).
func pkgLock(ctx context.Context, a *cli.App, o PkgBuildOptions, s *spec.Spec, src *pkgbuild.Source, br *pkgbuild.BuildRelations, path string, index func() (*debrepo.Index, error)) (*spec.Lock, []byte, error) {
	want := br.Digest(s, src)
	if o.Lock != "" {
		if data, err := os.ReadFile(path); err == nil {
			l, err := spec.ParseLock(path, data)
			if err != nil {
				return nil, nil, err
			}
			if l.SpecSHA256 != want {
				return nil, nil, fmt.Errorf("%s was made for another base spec, source version or build dependencies: remove it to resolve again", path)
			}
			a.Log.Info("using the build lock", "lock", path, "packages", len(l.Packages))
			return l, data, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, nil, err
		}
	}
	idx, err := index()
	if err != nil {
		return nil, nil, err
	}
	l, err := pkgbuild.Lock(ctx, idx, s, src, br)
	if err != nil {
		return nil, nil, err
	}
	var buf bytes.Buffer
	if err := l.Write(&buf); err != nil {
		return nil, nil, err
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return nil, nil, err
	}
	a.Log.Info("resolved the build dependencies", "lock", path, "packages", len(l.Packages))
	return l, buf.Bytes(), nil
}

func runPkgCheck(ctx context.Context, a *cli.App, src *pkgbuild.Source, l *spec.Lock, lockData []byte, paths []string, arch string, o PkgBuildOptions, opts pkgbuild.Options, prog *progress) error {
	outB, err := os.MkdirTemp(o.WorkDir, "ingot-pkg-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(outB)
	d, err := pkgbuild.Check(ctx, src, l, lockData, paths, arch, o.Output, outB, opts)
	if err != nil {
		return err
	}
	prog.finish()
	varied := fmt.Sprintf("build path %s, hostname %s, TZ=%s, LC_ALL=%s, umask %s, %d CPU, uname 2.6, DEB_BUILD_OPTIONS=%q",
		pkgbuild.Varied.BuildDir, pkgbuild.Varied.Hostname, pkgbuild.Varied.TZ, pkgbuild.Varied.Locale, pkgbuild.Varied.Umask,
		pkgbuild.Varied.CPUs, pkgbuild.Varied.DebBuildOptions)
	if d == nil {
		fmt.Fprintf(a.Stdout, "OK %s %s: two builds, byte-identical .deb files\n(second build varied: %s)\n", src.Name, src.Version, varied)
		return nil
	}
	fmt.Fprintf(a.Stdout, "DIFFERS: %s\n(second build varied: %s)\n", d, varied)
	return fmt.Errorf("builds of %s %s differ: %w", src.Name, src.Version, cli.ErrNegative)
}

func comparePrevious(a *cli.App, old string, res *pkgbuild.Result) error {
	oldName, _, _ := strings.Cut(filepath.Base(old), "_")
	for _, d := range res.Debs {
		if name, _, _ := strings.Cut(d.Name, "_"); name != oldName {
			continue
		}
		same, why, err := pkgbuild.SameContent(old, d.Path)
		if err != nil {
			return err
		}
		if !same {
			fmt.Fprintf(a.Stdout, "CHANGED %s against %s: %s\n", d.Name, old, why)
			return nil
		}
		fmt.Fprintf(a.Stdout, "UNCHANGED %s: same content as %s but for timestamps and version\n", d.Name, old)
		return fmt.Errorf("%s equals %s but for timestamps and version: %w", d.Name, old, cli.ErrUnchanged)
	}
	return fmt.Errorf("--previous %s: the build made no package %s", old, oldName)
}
