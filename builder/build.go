package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/sourcegraph/conc/pool"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/builder/dpkgdb"
	"github.com/ingotfleet/ingot/builder/normalize"
	"github.com/ingotfleet/ingot/builder/sandbox"
	"github.com/ingotfleet/ingot/builder/unpack"
)

// Package is one locked package, its .deb already in a local cache.
type Package struct {
	Name, Version, Architecture string
	Path                        string // the .deb on disk
	Size                        int64
	SHA256                      string // hex; checked before the file is used
	// Requested marks a package the spec asks for by name. apt records
	// the others that are neither in the Essential set (Essential: yes and
	// what it depends on) nor Priority: required as automatically
	// installed, in /var/lib/apt/extended_states; so does the builder.
	Requested bool
}

// ID is name_version_arch, the way packages are named in messages.
func (p *Package) ID() string { return p.Name + "_" + p.Version + "_" + p.Architecture }

// Input is everything a build depends on. Two builds of equal Inputs give
// the same image.
type Input struct {
	Architecture    string // native architecture (dpkg --print-architecture)
	Packages        []Package
	SourceDateEpoch int64
	Exclude, Keep   []string // absolute path globs; see excludes.go
	Overlay         string   // directory copied over the image, "" for none
	Customize       []string // shell commands run in the sandbox after install
	SourcesList     string   // content of /etc/apt/sources.list, "" for none
	Noise           []normalize.NoiseRule
}

// Event is a progress report. Phase is one of "verify", "unpack",
// "configure", "customize", "normalize", "walk", "import".
type Event struct {
	Phase       string
	Done, Total int    // units of the phase (packages, files…); Total 0 if unknown
	Item        string // what was just done, may be ""
}

// Options tune how (not what) a build runs: none of them may change the
// image.
type Options struct {
	WorkDir  string // where the root is made (a new directory inside it); default os.TempDir()
	Workers  int    // unpack concurrency; default GOMAXPROCS
	Progress func(Event)
	Log      *slog.Logger
	// ScriptOutput receives the output of maintainer scripts and
	// customize commands (default: discarded; it is kept for errors).
	ScriptOutput io.Writer
	// ReverseUnpack starts the packages in the opposite order (smallest
	// first instead of biggest first), for --check: the image must not
	// depend on which package's files land first.
	ReverseUnpack bool
}

// Root is a built root filesystem, before it is walked into an image.
type Root struct {
	Dir        string // the root directory (inside a build directory)
	BuildDir   string // remove with Cleanup
	Normalized *normalize.Report
	Noise      []normalize.NoiseApplied
	Excluded   int
}

// Cleanup removes the build directory.
func (r *Root) Cleanup() error {
	if r == nil || r.BuildDir == "" {
		return nil
	}
	return os.RemoveAll(r.BuildDir)
}

// ErrVerify is wrapped by errors about a package file that does not match
// its lock entry.
var ErrVerify = errors.New("package does not match the lock")

// BuildRoot makes the root filesystem of in: verify, unpack, dpkg
// database, maintainer scripts in the sandbox, overlay, customize,
// excludes, noise, normalisation. It needs root.
func BuildRoot(ctx context.Context, in *Input, opts Options) (*Root, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	progress := func(e Event) {
		if opts.Progress != nil {
			opts.Progress(e)
		}
	}
	if in.Architecture == "" {
		return nil, errors.New("build: no architecture")
	}
	if len(in.Packages) == 0 {
		return nil, errors.New("build: no packages")
	}
	if err := verifyAll(ctx, in.Packages, opts.Workers, progress); err != nil {
		return nil, err
	}
	workDir := opts.WorkDir
	if workDir == "" {
		workDir = os.TempDir()
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, fmt.Errorf("build directory: %w", err)
	}
	buildDir, err := os.MkdirTemp(workDir, "ingot-build-")
	if err != nil {
		return nil, fmt.Errorf("build directory: %w", err)
	}
	r := &Root{BuildDir: buildDir, Dir: filepath.Join(buildDir, "root")}
	ok := false
	defer func() {
		if !ok {
			_ = r.Cleanup() // after a failed build; its error is the one returned
		}
	}()
	if err := os.Mkdir(r.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(r.Dir, 0o755); err != nil {
		return nil, err
	}

	pkgs, essential, err := unpackRoot(ctx, r.Dir, in, opts, progress)
	if err != nil {
		return nil, err
	}

	// Maintainer scripts and customize commands run in the sandbox; their
	// output is kept for the error of the one that fails.
	var scriptLog strings.Builder
	out := io.Writer(&scriptLog)
	if opts.ScriptOutput != nil {
		out = io.MultiWriter(&scriptLog, opts.ScriptOutput)
	}
	sbox := sandbox.Options{SourceDateEpoch: in.SourceDateEpoch, Stdout: out, Stderr: out}
	if err := configure(ctx, r.Dir, pkgs, sbox, &scriptLog, progress); err != nil {
		return nil, err
	}
	if err := writeBaseFiles(r.Dir, in, pkgs, essential); err != nil {
		return nil, err
	}
	if in.Overlay != "" {
		if err := copyOverlay(ctx, in.Overlay, r.Dir); err != nil {
			return nil, err
		}
	}
	for i, c := range in.Customize {
		progress(Event{Phase: "customize", Done: i, Total: len(in.Customize), Item: c})
		scriptLog.Reset()
		if err := sandbox.Run(ctx, r.Dir, []string{"/bin/sh", "-c", c}, sbox); err != nil {
			return nil, fmt.Errorf("customize command %d (%q): %w\n%s", i+1, c, err, tail(scriptLog.String(), 40))
		}
	}
	if err := r.clean(ctx, in, progress); err != nil {
		return nil, err
	}
	ok = true
	return r, nil
}

// unpackRoot unpacks every package of in into dir in parallel, then
// makes /dev, places the Essential set's conffiles and writes the dpkg
// database: the root as dpkg --unpack would leave it. It returns the
// packages' database entries and the Essential set (by index).
func unpackRoot(ctx context.Context, dir string, in *Input, opts Options, progress func(Event)) ([]*dpkgdb.Package, map[int]bool, error) {
	debs := make([]unpack.Deb, len(in.Packages))
	for i, p := range in.Packages {
		debs[i] = unpack.Deb{Path: p.Path, Name: p.ID()}
	}
	opts.Log.Debug("unpacking", "packages", len(debs), "workers", opts.Workers, "root", dir)
	pkgs, err := unpack.All(ctx, dir, debs, opts.Workers, opts.ReverseUnpack, func(done, total int, name string) {
		progress(Event{Phase: "unpack", Done: done, Total: total, Item: name})
	})
	if err != nil {
		return nil, nil, err
	}
	if err := makeDev(dir); err != nil {
		return nil, nil, err
	}
	ctls := make([]*deb.Control, len(pkgs))
	for i, p := range pkgs {
		ctls[i] = p.Control
	}
	essential, err := essentialSet(ctls)
	if err != nil {
		return nil, nil, err
	}
	// mmdebstrap extracts the Essential set before dpkg installs it, so
	// their conffiles are in place while any maintainer script runs (the
	// passwd postinst reads /etc/login.defs of login, for one): do the same.
	if err := preplaceConffiles(dir, pkgs, essential); err != nil {
		return nil, nil, err
	}
	if err := dpkgdb.Write(ctx, dir, in.Architecture, pkgs); err != nil {
		return nil, nil, err
	}
	if err := stageControlFiles(dir, pkgs); err != nil {
		return nil, nil, err
	}
	return pkgs, essential, nil
}

// configure runs the maintainer scripts in the sandbox: preinst in
// dependency order, then dpkg --configure -a (postinst in dependency
// order, triggers), and checks every package ended up installed.
func configure(ctx context.Context, dir string, pkgs []*dpkgdb.Package, sbox sandbox.Options, scriptLog *strings.Builder, progress func(Event)) error {
	progress(Event{Phase: "configure", Total: len(pkgs)})
	script, err := configureScript(pkgs)
	if err != nil {
		return err
	}
	if err := sandbox.Run(ctx, dir, []string{"/bin/sh", "-c", script}, sbox); err != nil {
		var ee *sandbox.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("preinst scripts and dpkg --configure -a in the sandbox: exit status %d", ee.Code)
		}
		return fmt.Errorf("configuring packages: %w\n%s", err, tail(scriptLog.String(), 40))
	}
	if err := checkInstalled(dir, pkgs); err != nil {
		return fmt.Errorf("%w\n%s", err, tail(scriptLog.String(), 40))
	}
	progress(Event{Phase: "configure", Done: len(pkgs), Total: len(pkgs)})
	return nil
}

// clean applies the excludes and the noise list of in to the root and
// normalises it, recording what each did in r.
func (r *Root) clean(ctx context.Context, in *Input, progress func(Event)) error {
	if len(in.Exclude) > 0 {
		n, err := applyExcludes(ctx, r.Dir, in.Exclude, in.Keep)
		if err != nil {
			return err
		}
		r.Excluded = n
	}
	noise := in.Noise
	if noise == nil {
		noise = normalize.NoiseList
	}
	progress(Event{Phase: "normalize"})
	var err error
	if r.Noise, err = normalize.ApplyNoise(ctx, r.Dir, noise, in.SourceDateEpoch); err != nil {
		return err
	}
	if r.Normalized, err = normalize.Tree(ctx, r.Dir, normalize.Options{SourceDateEpoch: in.SourceDateEpoch}); err != nil {
		return err
	}
	return nil
}

// verifyAll checks every package file's size and sha256 against the lock.
func verifyAll(ctx context.Context, pkgs []Package, workers int, progress func(Event)) error {
	errs := make([]error, len(pkgs))
	var mu sync.Mutex
	n := 0
	p := pool.New().WithMaxGoroutines(max(workers, 1))
	for i := range pkgs {
		p.Go(func() {
			errs[i] = verifyFile(ctx, &pkgs[i])
			mu.Lock()
			defer mu.Unlock()
			n++
			progress(Event{Phase: "verify", Done: n, Total: len(pkgs), Item: pkgs[i].ID()})
		})
	}
	p.Wait()
	return errors.Join(errs...)
}

func verifyFile(ctx context.Context, p *Package) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(p.Path)
	if err != nil {
		return fmt.Errorf("%s: %w", p.ID(), err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("%s: reading %s: %w", p.ID(), p.Path, err)
	}
	if p.Size > 0 && n != p.Size {
		return fmt.Errorf("%w: %s (%s) has %d bytes, the lock says %d", ErrVerify, p.ID(), p.Path, n, p.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, p.SHA256) {
		return fmt.Errorf("%w: %s (%s) has sha256 %s, the lock says %s", ErrVerify, p.ID(), p.Path, got, p.SHA256)
	}
	return nil
}

// configureScript is the shell script run in the sandbox: every preinst
// with "install" in dependency order, run as dpkg runs it (from
// /var/lib/dpkg/tmp.ci holding the package's control files, with the
// environment dpkg gives maintainer scripts), then dpkg --configure -a.
func configureScript(pkgs []*dpkgdb.Package) (string, error) {
	var b strings.Builder
	b.WriteString("set -e\ncd /\nci=/var/lib/dpkg/tmp.ci\nexport DPKG_ADMINDIR=/var/lib/dpkg DPKG_ROOT= DPKG_MAINTSCRIPT_NAME=preinst\n")
	b.WriteString("DPKG_RUNNING_VERSION=$(dpkg-query --showformat='${Version}' --show dpkg 2>/dev/null || true)\nexport DPKG_RUNNING_VERSION\n")
	ctls := make([]*deb.Control, len(pkgs))
	for i, p := range pkgs {
		ctls[i] = p.Control
	}
	order, err := dependencyOrder(ctls)
	if err != nil {
		return "", err
	}
	for _, i := range order {
		p := pkgs[i]
		if _, ok := p.Control.Files["preinst"]; !ok {
			continue
		}
		fmt.Fprintf(&b, "rm -rf $ci; mv %s/%s $ci\n", stageDir, shellQuote(p.InfoName()))
		fmt.Fprintf(&b, "DPKG_MAINTSCRIPT_PACKAGE=%s DPKG_MAINTSCRIPT_ARCH=%s DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT=1 $ci/preinst install\n",
			shellQuote(p.Name()), shellQuote(p.Control.Get("Architecture")))
		b.WriteString("rm -rf $ci\n")
	}
	fmt.Fprintf(&b, "rm -rf %s\n", stageDir)
	b.WriteString("unset DPKG_MAINTSCRIPT_NAME DPKG_RUNNING_VERSION DPKG_ADMINDIR DPKG_ROOT\n")
	b.WriteString("dpkg --configure -a\n")
	return b.String(), nil
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-_:") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// checkInstalled reads the status file dpkg left and requires every
// package to be "install ok installed".
func checkInstalled(root string, pkgs []*dpkgdb.Package) error {
	db, err := dpkgdb.Load(root)
	if err != nil {
		return err
	}
	var bad []string
	for _, p := range pkgs {
		in := db.Lookup(p.Name())
		switch {
		case in == nil:
			bad = append(bad, p.Name()+" (missing)")
		case in.Status != "install ok installed":
			bad = append(bad, p.Name()+" ("+in.Status+")")
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("after dpkg --configure -a, not installed: %s", strings.Join(bad, ", "))
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
