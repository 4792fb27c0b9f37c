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
	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/atomicfile"
	"github.com/ingotfleet/ingot/internal/cli"
)

func init() { cli.Register(newPkgCommand) }

func newPkgCommand(a *cli.App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pkg",
		Short: "Build Debian packages from source, hermetically and reproducibly",
	}
	cmd.AddCommand(newPkgBuildCommand(a), newPkgRepoCommand(a), newPkgRepoKeyCommand(a))
	return cmd
}

func newPkgRepoCommand(a *cli.App) *cobra.Command {
	var r debrepo.LocalRepo
	var key string
	var archs []string
	cmd := &cobra.Command{
		Use:   "repo DIR [DEB...]",
		Short: "Add packages to a local repository and sign it",
		Long: `Repo copies the .deb files into DIR/pool/COMPONENT/, writes the Packages
index of every architecture from all packages in the pool, a Release with
their sha256 hashes, and InRelease: the Release clear-signed with the
OpenPGP secret key --key (ingot pkg repo-key makes one; an unprotected
gpg --export-secret-keys works too). A spec uses it as any repository:

  repositories:
    - url: file:///srv/ingot-repo
      suites: [local]
      components: [main]
      keyring: repo.asc      # the public key

The Release date is the newest time stamp in the packages, so the same
packages give the same repository byte for byte. A package already in the
pool under the same name, version and architecture must have the same
content.`,
		Args: cli.MinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				return cli.UsageError{Err: errors.New("--key SECRET-KEY is required")}
			}
			k, err := debrepo.LoadSigningKey(key)
			if err != nil {
				return err
			}
			r.Dir, r.Architectures = args[0], archs
			if err := r.Add(args[1:]...); err != nil {
				return err
			}
			if err := r.Write(k); err != nil {
				return err
			}
			a.Log.Info("repository written", "dir", r.Dir, "suite", r.Suite, "added", len(args)-1)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "OpenPGP secret key that signs the repository (required)")
	f.StringVar(&r.Suite, "suite", "local", "suite name (dists/SUITE)")
	f.StringVar(&r.Component, "component", "main", "component")
	f.StringSliceVar(&archs, "arch", nil, "architectures to index (default: those of the packages, else amd64)")
	return cmd
}

func newPkgRepoKeyCommand(a *cli.App) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "repo-key SECRET PUBLIC",
		Short: "Make an OpenPGP key that signs a local repository",
		Long: `Repo-key writes a new ed25519 OpenPGP key: the secret key to SECRET (mode
0600, for ingot pkg repo --key) and the armored public key to PUBLIC (what a
spec names as the repository's keyring).`,
		Args: cli.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			secret, public, err := debrepo.NewRepoKey(name, "")
			if err != nil {
				return err
			}
			if err := atomicfile.WriteNew(args[0], secret, 0o600); err != nil {
				return err
			}
			if err := atomicfile.WriteFile(args[1], public, 0o644); err != nil {
				return err
			}
			a.Log.Info("repository key written", "secret", args[0], "public", args[1])
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "ingot local repository", "the key's user id")
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
	f.StringVar(&o.Base, "base", "", "the base: a spec (its repositories and package set) or an image in the store (digest, unique prefix, NAME:TAG or an image tar; its apt sources are used) (required)")
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
Build-Conflicts) with the base's package set and build-essential into a
build lock, makes the build root from it, and runs
dpkg-buildpackage -b in the sandbox: no network (loopback only), the
fixed build path /build/SOURCE-UPSTREAMVERSION, SOURCE_DATE_EPOCH from
debian/changelog, LC_ALL=C.UTF-8, TZ=UTC, umask 022, a fixed host name
and DEB_BUILD_OPTIONS=nocheck. The .deb files, the build lock and a build
record (SOURCE_VERSION_ARCH.ingot-buildinfo) are written to -o.

--base is a spec file (its repositories and package set; the root is made
from the lock) or an image in the store (digest, unique prefix, NAME:TAG
or an image tar): then the image's own apt sources are resolved against,
the lock holds only what the image lacks, and the root is the image
extracted from the store with those packages installed on top.

--check runs the second build with another build path, host name, TZ,
locale, umask, one CPU, uname 2.6 and the clock 398 days ahead (the
host's libfaketime, Debian package faketime).

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

func runPkgBuild(ctx context.Context, a *cli.App, o PkgBuildOptions, source string) (err error) {
	switch o.Progress {
	case "auto", "bars", "plain", "none":
	default:
		return cli.UsageError{Err: fmt.Errorf("--progress: %q is not auto, bars, plain or none", o.Progress)}
	}
	if o.Base == "" {
		return cli.UsageError{Err: errors.New("--base SPEC|IMAGE is required")}
	}
	if o.Check && o.Previous != "" {
		return cli.UsageError{Err: errors.New("--check and --previous do not go together")}
	}
	if os.Geteuid() != 0 {
		return errors.New("ingot pkg build needs root: it builds a root filesystem and runs the build in namespaces")
	}
	base, st, err := pkgBase(ctx, a, o.Base)
	if err != nil {
		return err
	}
	if st != nil {
		defer cli.Close(&err, st)
	}
	arch := base.Arch()
	archs := []string{arch}
	if base.Spec != nil {
		archs = base.Spec.Architectures
	}
	cacheDir := a.CacheDir(o.Cache)
	cache := &debrepo.Cache{Dir: filepath.Join(cacheDir, "debs")}
	var idx *debrepo.Index
	index := func() (*debrepo.Index, error) {
		if idx != nil {
			return idx, nil
		}
		repos, err := base.Repos(o.AptRoot)
		if err != nil {
			return nil, err
		}
		c := &debrepo.Client{}
		idx, err = c.FetchIndex(ctx, repos, archs)
		return idx, err
	}
	src, err := pkgSource(ctx, o, source, cacheDir, cache, index)
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
	l, lockData, err := pkgLock(ctx, a, o, base, src, br, lockPath, index)
	if err != nil {
		return err
	}
	lockSpec := base.Spec
	if lockSpec == nil {
		lockSpec = &spec.Spec{} // an image's lock has no local package
	}
	paths, err := builder.FetchLock(ctx, lockSpec, l, cache, nil)
	if err != nil {
		return err
	}
	prog := newProgress(a.Stderr, o.Progress)
	defer prog.finish()
	opts := pkgbuild.Options{WorkDir: o.WorkDir, RootCache: o.RootCache, Log: a.Log, Progress: prog.show, Base: base.Image}
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
		a.Printf("%s  %s\n", d.SHA256, d.Path)
	}
	a.Log.Info("built", "source", src.Name, "version", src.Version, "packages", len(res.Debs), "lock", lockPath, "record", res.Record)
	if o.Previous != "" {
		return comparePrevious(a, o.Previous, res)
	}
	return nil
}

// pkgSource loads the source package to build: a .dsc, an unpacked
// source tree, or with --from-repo NAME[=VERSION] fetched from the base's
// repositories.
func pkgSource(ctx context.Context, o PkgBuildOptions, source, cacheDir string, cache *debrepo.Cache, index func() (*debrepo.Index, error)) (*pkgbuild.Source, error) {
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
		return pkgbuild.LoadDsc(dsc)
	case strings.HasSuffix(source, ".dsc"):
		return pkgbuild.LoadDsc(source)
	}
	return pkgbuild.LoadTree(source)
}

// pkgBase reads --base: a spec file, or else an image in the store (a
// digest, a unique prefix of one, NAME:TAG, or an image tar imported
// first, as other commands take images). With an image, the store it is
// read from is returned too, to be closed after the build.
func pkgBase(ctx context.Context, a *cli.App, ref string) (*pkgbuild.Base, *store.Store, error) {
	if fi, err := os.Stat(ref); err == nil && fi.Mode().IsRegular() && !strings.HasSuffix(ref, ".tar") &&
		compression.CompressionFromName(ref) == compression.None {
		s, err := spec.Load(ref)
		if err != nil {
			return nil, nil, err
		}
		return &pkgbuild.Base{Spec: s}, nil, nil
	}
	st, err := a.OpenStore()
	if err != nil {
		return nil, nil, err
	}
	d, err := a.ResolveImage(ctx, st, ref)
	if err == nil {
		var img *pkgbuild.ImageBase
		if img, err = pkgbuild.OpenImageBase(ctx, st, d); err == nil {
			a.Log.Info("base image", "ref", ref, "digest", d, "packages", len(img.Installed))
			return &pkgbuild.Base{Image: img}, st, nil
		}
	}
	return nil, nil, errors.Join(fmt.Errorf("--base %s: neither a spec file nor an image in the store: %w", ref, err), st.Close())
}

// pkgLock reads the build lock at path when it exists and matches the
// build, and resolves and writes it otherwise (a lock named with --lock
// that does not match is refused, as ingot build refuses a stale lock).
func pkgLock(ctx context.Context, a *cli.App, o PkgBuildOptions, base *pkgbuild.Base, src *pkgbuild.Source, br *pkgbuild.BuildRelations, path string, index func() (*debrepo.Index, error)) (*spec.Lock, []byte, error) {
	want := base.Key(br, src)
	if o.Lock != "" {
		if data, err := os.ReadFile(path); err == nil {
			l, err := spec.ParseLock(path, data)
			if err != nil {
				return nil, nil, err
			}
			if l.SpecSHA256 != want {
				return nil, nil, fmt.Errorf("%s was made for another base, source version or build dependencies: remove it to resolve again", path)
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
	l, err := pkgbuild.Lock(ctx, idx, base, src, br)
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
	defer func() { _ = os.RemoveAll(outB) }() // the second build's scratch output
	d, err := pkgbuild.Check(ctx, src, l, lockData, paths, arch, o.Output, outB, opts)
	if err != nil {
		return err
	}
	prog.finish()
	varied := fmt.Sprintf("build path %s, hostname %s, TZ=%s, LC_ALL=%s, umask %s, %d CPU, uname 2.6, DEB_BUILD_OPTIONS=%q, clock %s (libfaketime)",
		pkgbuild.Varied.BuildDir, pkgbuild.Varied.Hostname, pkgbuild.Varied.TZ, pkgbuild.Varied.Locale, pkgbuild.Varied.Umask,
		pkgbuild.Varied.CPUs, pkgbuild.Varied.DebBuildOptions, pkgbuild.Varied.ClockOffset)
	if d == nil {
		a.Printf("OK %s %s: two builds, byte-identical .deb files\n(second build varied: %s)\n", src.Name, src.Version, varied)
		return nil
	}
	a.Printf("DIFFERS: %s\n(second build varied: %s)\n", d, varied)
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
			a.Printf("CHANGED %s against %s: %s\n", d.Name, old, why)
			return nil
		}
		a.Printf("UNCHANGED %s: same content as %s but for timestamps and version\n", d.Name, old)
		return fmt.Errorf("%s equals %s but for timestamps and version: %w", d.Name, old, cli.ErrUnchanged)
	}
	return fmt.Errorf("--previous %s: the build made no package %s", old, oldName)
}
