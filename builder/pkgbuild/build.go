package pkgbuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/ingotfleet/ingot/builder"
	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/builder/normalize"
	"github.com/ingotfleet/ingot/builder/sandbox"
	"github.com/ingotfleet/ingot/builder/spec"
	"github.com/ingotfleet/ingot/internal/atomicfile"
)

// Env is the conditions a build runs under. Fixed is what every build
// gets; Varied is the second build of a check.
type Env struct {
	BuildDir        string // parent of the unpacked source; outputs land here
	Hostname        string
	TZ              string
	Locale          string // LC_ALL and LANG
	Umask           string // octal
	DebBuildOptions string
	CPUs            int  // 0: all; else the build is pinned to that many CPUs (taskset)
	OldUname        bool // uname reports a 2.6 kernel (setarch --uname-2.6)
	// ClockOffset, when set, moves the clock the build reads by this
	// libfaketime offset ("+398d"): the host's libfaketime is copied into
	// the build root (outside any package) and preloaded.
	ClockOffset string
}

// FaketimeLibs are where Debian's libfaketime package puts the library
// (one per multiarch triplet; the first that exists is used).
var FaketimeLibs = []string{
	"/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
	"/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
	"/usr/lib/faketime/libfaketime.so.1",
}

// faketimeTarget is where the library is bound in the build root.
const faketimeTarget = "/usr/lib/ingot-check/libfaketime.so.1"

// ErrNoFaketime is returned for a build whose clock is to be moved on a
// host without libfaketime.
var ErrNoFaketime = errors.New("moving the build's clock needs libfaketime on the host (Debian package libfaketime, which faketime depends on)")

func faketimeLib() (string, error) {
	for _, p := range FaketimeLibs {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", ErrNoFaketime
}

// Fixed is the environment of a build.
var Fixed = Env{
	BuildDir: "/build", Hostname: "ingot-build", TZ: "UTC", Locale: "C.UTF-8", Umask: "022",
	DebBuildOptions: "nocheck",
}

// Varied is the second build of a check: every condition a build must
// not depend on, changed.
var Varied = Env{
	BuildDir: "/build/varied-path/more", Hostname: "ingot-check-host", TZ: "XYZ-14", Locale: "C",
	Umask: "002", DebBuildOptions: "nocheck parallel=1", CPUs: 1, OldUname: true, ClockOffset: "+398d",
}

// Command is the build command.
var Command = []string{"dpkg-buildpackage", "-b", "--no-sign"}

// Options tune how a build runs.
type Options struct {
	WorkDir string // where build roots are made (default os.TempDir())
	// RootCache, when set, keeps the build root of each package set
	// (by a digest of the locked packages and the lock's time) and
	// copies it for every build with that set instead of making it
	// again.
	RootCache string
	Log       *slog.Logger
	// Output receives the build log (default: discarded; its tail is
	// kept for errors).
	Output   io.Writer
	Progress func(builder.Event)
	// Base, when set, is the image the build root starts from; the
	// lock then holds only the packages the image lacks.
	Base *ImageBase
}

// Output is one package a build made.
type Output struct {
	Name   string // file name, such as hello_2.10-3_amd64.deb
	Path   string
	Size   int64
	SHA256 string
}

// Result is a finished build.
type Result struct {
	Source          *Source
	Arch            string
	SourceDateEpoch int64
	BuildPath       string // the unpacked source inside the build root
	BaseImage       string // digest of the base image, "" for a spec's package set
	Debs            []Output
	Record          string // path of the build record
}

// ErrBuildFailed is wrapped by errors about a build command that failed;
// ErrNetwork also when its log shows it tried to reach the network.
var (
	ErrBuildFailed = errors.New("package build failed")
	ErrNetwork     = errors.New("the build tried to reach the network, which a build does not have (only loopback)")
)

// Build makes the build root of lock l (paths[i] is the .deb of
// l.Packages[i]), unpacks src in it under env.BuildDir, runs the build
// in the sandbox and writes the packages and a build record into outDir.
func Build(ctx context.Context, src *Source, l *spec.Lock, lockData []byte, paths []string, arch, outDir string, env Env, opts Options) (*Result, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Output == nil {
		opts.Output = io.Discard
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	root, cleanup, err := makeRoot(ctx, l, paths, arch, opts)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	progress(opts, "unpack-source", src.Name+" "+src.Version)
	parent := filepath.Join(root, env.BuildDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	dirName := src.Name + "-" + src.UpstreamVersion()
	buildPath := path.Join(env.BuildDir, dirName)
	var log tailBuffer
	out := io.MultiWriter(&log, opts.Output)
	sb := sandbox.Options{Untrusted: true, Loopback: true, Hostname: env.Hostname, Dir: env.BuildDir, Stdout: out, Stderr: out,
		SourceDateEpoch: l.SourceDateEpoch}
	if src.Dsc != "" {
		for _, f := range append([]string{src.Dsc}, src.Files...) {
			if err := copyFile(f, filepath.Join(parent, filepath.Base(f))); err != nil {
				return nil, err
			}
		}
		cmd := []string{"dpkg-source", "-x", filepath.Base(src.Dsc), dirName}
		if err := sandbox.Run(ctx, root, cmd, sb); err != nil {
			return nil, fmt.Errorf("unpacking %s: %w\n%s", src.Dsc, err, log.Tail(20))
		}
	} else if err := copyTree(ctx, src.Tree, filepath.Join(parent, dirName)); err != nil {
		return nil, err
	}
	// SOURCE_DATE_EPOCH is the date of the changelog's first entry, read
	// by dpkg's own parser in the sandbox.
	var sdeOut bytes.Buffer
	sb.Dir, sb.Stdout = buildPath, &sdeOut
	if err := sandbox.Run(ctx, root, []string{"dpkg-parsechangelog", "-STimestamp"}, sb); err != nil {
		return nil, fmt.Errorf("reading debian/changelog: %w\n%s", err, log.Tail(20))
	}
	sde, err := strconv.ParseInt(strings.TrimSpace(sdeOut.String()), 10, 64)
	if err != nil || sde < 0 {
		return nil, fmt.Errorf("debian/changelog: timestamp %q", truncate(sdeOut.String()))
	}
	progress(opts, "build", src.Name+" "+src.Version)
	sb.Stdout, sb.SourceDateEpoch, sb.Env = out, sde, env.Variables()
	if env.ClockOffset != "" {
		// A copy, not a bind mount (the untrusted sandbox has none): the
		// root is this build's own and is thrown away.
		lib, err := faketimeLib()
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(root, faketimeTarget)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := copyFile(lib, dst); err != nil {
			return nil, err
		}
	}
	script := env.Script()
	opts.Log.Debug("building", "source", src.Name, "version", src.Version, "path", buildPath, "script", script)
	if err := sandbox.Run(ctx, root, []string{"/bin/sh", "-c", script}, sb); err != nil {
		var ee *sandbox.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s exited with status %d", ErrBuildFailed, strings.Join(Command, " "), ee.Code)
		}
		if triedNetwork(log.String()) {
			err = fmt.Errorf("%w: %w", err, ErrNetwork)
		}
		return nil, fmt.Errorf("%s %s: %w\n%s", src.Name, src.Version, err, log.Tail(40))
	}
	res := &Result{Source: src, Arch: arch, SourceDateEpoch: sde, BuildPath: buildPath}
	if opts.Base != nil {
		res.BaseImage = opts.Base.Digest.String()
	}
	if res.Debs, err = collectDebs(parent, outDir, sde); err != nil {
		return nil, err
	}
	if len(res.Debs) == 0 {
		return nil, fmt.Errorf("%s %s: %w: no .deb in %s\n%s", src.Name, src.Version, ErrBuildFailed, env.BuildDir, log.Tail(20))
	}
	res.Record = filepath.Join(outDir, src.ID()+"_"+arch+".ingot-buildinfo")
	if err := atomicfile.WriteFile(res.Record, recordText(res, l, lockData, env), 0o644); err != nil {
		return nil, err
	}
	return res, nil
}

// collectDebs copies the packages a build left in parent to outDir and
// normalises them.
func collectDebs(parent, outDir string, sde int64) ([]Output, error) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return nil, err
	}
	var debs []Output
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || !(strings.HasSuffix(n, ".deb") || strings.HasSuffix(n, ".udeb") || strings.HasSuffix(n, ".ddeb")) {
			continue
		}
		dst := filepath.Join(outDir, n)
		if err := copyFile(filepath.Join(parent, n), dst); err != nil {
			return nil, err
		}
		// dpkg-deb already writes ar headers with SOURCE_DATE_EPOCH;
		// the normaliser makes sure of it (owner, mode, time).
		if _, err := normalize.File(dst, sde); err != nil {
			return nil, err
		}
		o, err := describe(dst)
		if err != nil {
			return nil, err
		}
		debs = append(debs, o)
	}
	return debs, nil
}

// Variables is the environment of the build command beyond the
// sandbox's fixed one.
func (e Env) Variables() []string {
	vs := []string{
		"DEB_BUILD_OPTIONS=" + e.DebBuildOptions,
		"DEB_BUILD_PROFILES=" + strings.Join(Profiles, " "),
		"TZ=" + e.TZ, "LC_ALL=" + e.Locale, "LANG=" + e.Locale,
	}
	if e.ClockOffset != "" {
		// The monotonic clocks stay real: timeouts and make's job
		// control keep working. NO_FAKE_STAT keeps stat(2) real, as
		// reprotest does: libfaketime otherwise shifts the mtimes tools
		// read and copy back (install -p, cp -p), which moved the mtimes
		// of changelog.gz files in libmd-dev, lib32z1-dev and
		// python3-hashids past dpkg-deb's SOURCE_DATE_EPOCH clamp.
		vs = append(vs, "LD_PRELOAD="+faketimeTarget, "FAKETIME="+e.ClockOffset, "FAKETIME_DONT_FAKE_MONOTONIC=1", "NO_FAKE_STAT=1")
	}
	return vs
}

// Script is the shell command the sandbox runs.
func (e Env) Script() string {
	var b strings.Builder
	fmt.Fprintf(&b, "umask %s; exec", e.Umask)
	if e.CPUs > 0 {
		fmt.Fprintf(&b, " taskset -c 0-%d", e.CPUs-1)
	}
	if e.OldUname {
		b.WriteString(` setarch "$(uname -m)" --uname-2.6`)
	}
	for _, c := range Command {
		b.WriteString(" " + c)
	}
	return b.String()
}

func progress(opts Options, phase, item string) {
	if opts.Progress != nil {
		opts.Progress(builder.Event{Phase: phase, Item: item})
	}
}

// networkSigns are what build tools print when they find no network.
var networkSigns = []string{
	"Network is unreachable", "Temporary failure in name resolution", "Could not resolve host",
	"Name or service not known", "getaddrinfo", "No address associated with hostname",
}

func triedNetwork(log string) bool {
	for _, s := range networkSigns {
		if strings.Contains(log, s) {
			return true
		}
	}
	return false
}

// makeRoot makes (or copies from the root cache) the build root of l:
// from the packages of the lock, or from the base image and the lock's
// packages on top.
func makeRoot(ctx context.Context, l *spec.Lock, paths []string, arch string, opts Options) (string, func(), error) {
	build := func() (string, func(), error) {
		if opts.Base != nil {
			return imageRoot(ctx, opts.Base, l, paths, opts)
		}
		in := &builder.Input{Architecture: arch, SourceDateEpoch: l.SourceDateEpoch}
		for i, p := range l.Packages {
			in.Packages = append(in.Packages, builder.Package{Name: p.Name, Version: p.Version, Architecture: p.Architecture,
				Path: paths[i], Size: p.Size, SHA256: p.SHA256, Requested: true})
		}
		r, err := builder.BuildRoot(ctx, in, builder.Options{WorkDir: opts.WorkDir, Log: opts.Log, Progress: opts.Progress})
		if err != nil {
			return "", nil, fmt.Errorf("build root: %w", err)
		}
		return r.Dir, func() { _ = r.Cleanup() }, nil
	}
	if opts.RootCache == "" {
		return build()
	}
	// Keyed by what the root is made of, so that builds whose locks
	// resolve to the same packages share it.
	h := sha256.New()
	_, _ = fmt.Fprintf(h, "%s %d\n", arch, l.SourceDateEpoch) // a hash: writes never fail
	if opts.Base != nil {
		_, _ = fmt.Fprintf(h, "image %s\n", opts.Base.Digest)
	}
	for _, p := range l.Packages {
		_, _ = fmt.Fprintf(h, "%s %s %s %s\n", p.Name, p.Version, p.Architecture, p.SHA256)
	}
	cached := filepath.Join(opts.RootCache, hex.EncodeToString(h.Sum(nil))[:32])
	if err := os.MkdirAll(opts.RootCache, 0o755); err != nil {
		return "", nil, err
	}
	lk, err := os.OpenFile(cached+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", nil, err
	}
	defer lk.Close()
	if err := syscall.Flock(int(lk.Fd()), syscall.LOCK_EX); err != nil {
		return "", nil, err
	}
	if _, err := os.Stat(cached); err != nil {
		root, done, err := build()
		if err != nil {
			return "", nil, err
		}
		tmp := cached + ".tmp"
		if err := os.RemoveAll(tmp); err != nil { // a copy an earlier crash left
			return "", nil, fmt.Errorf("caching the build root: %w", err)
		}
		err = cpTree(ctx, root, tmp)
		done()
		if err == nil {
			err = os.Rename(tmp, cached)
		}
		if err != nil {
			_ = os.RemoveAll(tmp) // the error that matters is err
			return "", nil, fmt.Errorf("caching the build root: %w", err)
		}
	}
	workDir := opts.WorkDir
	if workDir == "" {
		workDir = os.TempDir()
	}
	dir, err := os.MkdirTemp(workDir, "ingot-pkgbuild-")
	if err != nil {
		return "", nil, err
	}
	root := filepath.Join(dir, "root")
	if err := cpTree(ctx, cached, root); err != nil {
		_ = os.RemoveAll(dir) // the error that matters is cpTree's
		return "", nil, err
	}
	return root, func() { _ = os.RemoveAll(dir) }, nil // the build's own copy, thrown away
}

// cpTree copies a root filesystem with owners, modes, times, links,
// device nodes and extended attributes (cp -a).
func cpTree(ctx context.Context, src, dst string) error {
	out, err := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp -a %s %s: %v: %s", src, dst, err, bytes.TrimSpace(out))
	}
	return nil
}

// copyTree copies an unpacked source tree into the build root; the
// files become root's (the build runs as root of its sandbox).
func copyTree(ctx context.Context, src, dst string) error {
	out, err := exec.CommandContext(ctx, "cp", "-R", "--no-dereference", "--preserve=mode,timestamps,links", "--", src+"/.", dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("copying %s: %v: %s", src, err, bytes.TrimSpace(out))
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := atomicfile.Create(dst, 0o644)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := io.Copy(f, in); err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return f.Commit()
}

func describe(p string) (Output, error) {
	f, err := os.Open(p)
	if err != nil {
		return Output{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Output{}, err
	}
	return Output{Name: filepath.Base(p), Path: p, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// recordText is the build record: what was built, from what, how, and
// what came out, as one deb822 paragraph (like dpkg's .buildinfo).
// Nothing in it depends on when or where the build ran.
func recordText(res *Result, l *spec.Lock, lockData []byte, env Env) []byte {
	p := &deb.Paragraph{}
	p.Set("Format", "ingot-buildinfo 1")
	p.Set("Source", res.Source.Name)
	p.Set("Version", res.Source.Version)
	if res.Source.DscSHA256 != "" {
		p.Set("Dsc-Sha256", res.Source.DscSHA256)
	}
	p.Set("Build-Architecture", res.Arch)
	p.Set("Build-Path", res.BuildPath)
	p.Set("Build-Command", strings.Join(Command, " "))
	p.Set("Source-Date-Epoch", strconv.FormatInt(res.SourceDateEpoch, 10))
	sum := sha256.Sum256(lockData)
	p.Set("Build-Lock-Sha256", hex.EncodeToString(sum[:]))
	p.Set("Build-Lock-Key", l.SpecSHA256)
	if res.BaseImage != "" {
		p.Set("Base-Image", res.BaseImage)
	}
	vars := map[string]string{}
	for _, kv := range append(sandbox.Environment(res.SourceDateEpoch), env.Variables()...) {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	var envLines []string
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		envLines = append(envLines, k+"="+vars[k])
	}
	envLines = append(envLines, "(hostname)="+env.Hostname, "(umask)="+env.Umask, "(network)=loopback only")
	p.Set("Environment", "\n "+strings.Join(quoteAll(envLines), "\n "))
	var sums []string
	for _, d := range res.Debs {
		sums = append(sums, fmt.Sprintf("%s %d %s", d.SHA256, d.Size, d.Name))
	}
	p.Set("Checksums-Sha256", "\n "+strings.Join(sums, "\n "))
	var deps []string
	for _, pk := range l.Packages {
		deps = append(deps, fmt.Sprintf("%s (= %s)", pk.Name, pk.Version))
	}
	p.Set("Installed-Build-Depends", "\n "+strings.Join(deps, ",\n "))
	var b bytes.Buffer
	_, _ = p.WriteTo(&b) // a bytes.Buffer: writes never fail
	return b.Bytes()
}

func quoteAll(kvs []string) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		out[i] = k + "=" + strconv.Quote(v)
	}
	return out
}

// tailBuffer keeps a build log in memory.
type tailBuffer struct{ bytes.Buffer }

func (t *tailBuffer) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(t.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
