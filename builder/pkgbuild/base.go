package pkgbuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/builder/debrepo"
	"github.com/ingotfleet/ingot/builder/sandbox"
	"github.com/ingotfleet/ingot/builder/spec"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/images/store"
)

// Base is what a build root starts from: the package set of a spec
// (made into a root by the image builder), or an image in the store
// (extracted as it is, with only the build dependencies it lacks
// installed on top).
type Base struct {
	Spec  *spec.Spec
	Image *ImageBase
}

// Arch is the architecture packages are built for: the spec's first, or
// the image's dpkg's.
func (b *Base) Arch() string {
	if b.Image != nil {
		return b.Image.Arch
	}
	return b.Spec.Architectures[0]
}

// Repos are the repositories build dependencies are resolved against:
// the spec's (the host's apt sources below aptRoot when it names none),
// or the image's own apt sources and keyrings.
func (b *Base) Repos(aptRoot string) ([]debrepo.Repo, error) {
	if b.Image != nil {
		return b.Image.Repos()
	}
	return Repos(b.Spec, aptRoot)
}

// ImageBase is an image in the store a build starts from.
type ImageBase struct {
	Store    *store.Store
	Digest   images.Digest
	Manifest *images.Manifest
	Arch     string // dpkg's architecture in the image
	// Installed are the packages dpkg's status in the image lists as
	// installed, as index entries for the resolver (Repository -2).
	Installed []*debrepo.Package
}

// imageRepository marks the resolver entries of packages the base
// image already holds.
const imageRepository = -2

// OpenImageBase reads the manifest and the dpkg status of image d.
func OpenImageBase(ctx context.Context, st *store.Store, d images.Digest) (*ImageBase, error) {
	m, err := st.Manifest(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("base image %s: %w", d, err)
	}
	b := &ImageBase{Store: st, Digest: d, Manifest: m}
	status, err := b.readFile(ctx, "var/lib/dpkg/status")
	if err != nil {
		return nil, fmt.Errorf("base image %s: %w", d, err)
	}
	err = deb.ReadParagraphs(bytes.NewReader(status), "var/lib/dpkg/status", false, func(p *deb.Paragraph) error {
		if f := strings.Fields(p.Get("Status")); len(f) != 3 || f[2] != "installed" {
			return nil
		}
		one := func(k string) string { return strings.Join(strings.Fields(deb.Decode(p.Get(k))), " ") }
		pk := &debrepo.Package{
			Name: p.Get("Package"), Version: p.Get("Version"), Architecture: p.Get("Architecture"),
			MultiArch: strings.ToLower(p.Get("Multi-Arch")), Essential: strings.EqualFold(p.Get("Essential"), "yes"),
			Priority: p.Get("Priority"), Source: p.Get("Source"),
			PreDepends: one("Pre-Depends"), Depends: one("Depends"), Provides: one("Provides"),
			Conflicts: one("Conflicts"), Breaks: one("Breaks"),
			Filename: "base-image.deb", SHA256: strings.Repeat("0", 64), Repository: imageRepository,
		}
		if pk.Name == "dpkg" {
			b.Arch = pk.Architecture
		}
		b.Installed = append(b.Installed, pk)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("base image %s: %w", d, err)
	}
	if b.Arch == "" {
		return nil, fmt.Errorf("base image %s: dpkg is not installed in it", d)
	}
	return b, nil
}

// readFile reads the regular file p (a manifest path, no leading slash)
// of the image, following symlinks within the image.
func (b *ImageBase) readFile(ctx context.Context, p string) ([]byte, error) {
	e, err := b.lookup(p)
	if err != nil {
		return nil, err
	}
	r, err := b.Store.OpenFile(ctx, e.SHA256)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	defer r.Close()
	return io.ReadAll(r)
}

// lookup finds the regular file at p, following symlinks (at most 16).
func (b *ImageBase) lookup(p string) (*images.Entry, error) {
	for range 16 {
		e := b.Manifest.Lookup(p)
		if e == nil {
			return nil, fmt.Errorf("/%s: %w", p, os.ErrNotExist)
		}
		switch e.Type {
		case images.TypeFile:
			return e, nil
		case images.TypeHardlink:
			if r := b.Manifest.Resolve(e); r != nil {
				return r, nil
			}
			return nil, fmt.Errorf("/%s: hardlink to a missing file", p)
		case images.TypeSymlink:
			if strings.HasPrefix(e.Link, "/") {
				p = path.Clean(strings.TrimPrefix(e.Link, "/"))
			} else {
				p = path.Join(path.Dir(p), e.Link)
			}
			if p == ".." || strings.HasPrefix(p, "../") {
				p = "."
			}
		default:
			return nil, fmt.Errorf("/%s: not a regular file", p)
		}
	}
	return nil, fmt.Errorf("/%s: too many symlinks", p)
}

// Repos reads the image's apt sources (etc/apt/sources.list and
// sources.list.d) and the keyrings they name or etc/apt/trusted.gpg.d,
// the way apt in the image would.
func (b *ImageBase) Repos() ([]debrepo.Repo, error) {
	dir, err := os.MkdirTemp("", "ingot-base-apt-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }() // a scratch copy of the image's apt files
	ctx := context.Background()
	for _, e := range b.Manifest.Entries {
		if !strings.HasPrefix(e.Path, "etc/apt/") && !strings.HasPrefix(e.Path, "usr/share/keyrings/") {
			continue
		}
		if e.Type != images.TypeFile && e.Type != images.TypeSymlink && e.Type != images.TypeHardlink {
			continue
		}
		data, err := b.readFile(ctx, e.Path)
		if errors.Is(err, os.ErrNotExist) {
			continue // a dangling symlink
		}
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(dir, filepath.FromSlash(e.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return nil, err
		}
	}
	repos, err := debrepo.HostRepos(dir)
	if err != nil {
		return nil, fmt.Errorf("base image %s: %s", b.Digest, strings.ReplaceAll(err.Error(), dir, ""))
	}
	for i := range repos {
		repos[i].From = strings.Replace(repos[i].From, dir, "base image ", 1)
	}
	return repos, nil
}

// Extract writes the image's tree into the empty directory dir, with
// owners, modes, devices and extended attributes (the store's tar,
// through GNU tar, as ingot review materialises a base).
func (b *ImageBase) Extract(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	cmd := exec.CommandContext(ctx, "tar", "--extract", "--file", "-", "--directory", dir,
		"--same-owner", "--same-permissions", "--numeric-owner", "--xattrs", "--xattrs-include=*")
	cmd.Stdin = pr
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	eerr := b.Store.Export(ctx, b.Digest, pw, compression.None)
	pw.CloseWithError(eerr)
	werr := cmd.Wait()
	pr.Close()
	if eerr != nil {
		return fmt.Errorf("exporting the base image %s: %w", b.Digest, eerr)
	}
	if werr != nil {
		return fmt.Errorf("extracting the base image %s: %v: %s", b.Digest, werr, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// has reports whether the image holds package name of architecture
// arch ("all" packages match any).
func (b *ImageBase) has(name, arch string) bool {
	for _, p := range b.Installed {
		if p.Name == name && (p.Architecture == arch || p.Architecture == "all" || arch == "all") {
			return true
		}
	}
	return false
}

// Key is what a build lock records as its spec-sha256 (BuildRelations.Digest
// for a spec).
func (b *Base) Key(br *BuildRelations, src *Source) string {
	if b.Image == nil {
		return br.Digest(b.Spec, src)
	}
	h := sha256.New()
	_, _ = fmt.Fprintf(h, "ingot pkg build lock 1\nimage %s\nsource %s %s\narch %s\nprofiles %s\ndepends %s\nconflicts %s\n",
		b.Image.Digest, src.Name, src.Version, br.Arch, strings.Join(br.Profiles, " "), br.Depends, br.Conflicts)
	return hex.EncodeToString(h.Sum(nil))
}

// depsWork is the scratch directory in an image root while apt installs
// the build dependencies; it is removed afterwards.
const depsWork = "tmp/ingot-build-deps"

// aptInstall installs the .deb files in /depsWork offline: no sources
// (nothing else can be chosen), apt's lists, caches and logs in the
// scratch directory, no Recommends.
var aptInstall = "apt-get -q -y --no-install-recommends -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/" + depsWork + "/none" +
	" -o Dir::State::Lists=/" + depsWork + "/lists -o Dir::Cache::Archives=/" + depsWork + "/archives" +
	" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o Dir::Log=/" + depsWork + "/log" +
	" -o APT::Sandbox::User=root -o DPkg::Options::=--force-unsafe-io install /" + depsWork + "/*.deb"

// imageRoot makes a build root from the base image: its tree extracted
// from the store, then the packages of l (what the image lacks; paths[i]
// is the .deb of l.Packages[i], checked against the lock) installed by
// apt from the image in the sandbox, as apt installs build dependencies
// for sbuild. Nothing the image has is unpacked again.
func imageRoot(ctx context.Context, b *ImageBase, l *spec.Lock, paths []string, opts Options) (string, func(), error) {
	workDir := opts.WorkDir
	if workDir == "" {
		workDir = os.TempDir()
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp(workDir, "ingot-pkgbuild-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) } // the build root, thrown away
	root := filepath.Join(dir, "root")
	progress(opts, "extract", b.Digest.String())
	if err := b.Extract(ctx, root); err != nil {
		cleanup()
		return "", nil, err
	}
	if len(l.Packages) == 0 {
		return root, cleanup, nil
	}
	if err := installDeps(ctx, root, l, paths, opts); err != nil {
		cleanup()
		return "", nil, err
	}
	return root, cleanup, nil
}

func installDeps(ctx context.Context, root string, l *spec.Lock, paths []string, opts Options) error {
	work := filepath.Join(root, depsWork)
	for _, d := range []string{"lists/partial", "archives/partial", "log", "none"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			return err
		}
	}
	for i, p := range l.Packages {
		o, err := describe(paths[i])
		if err != nil {
			return err
		}
		if o.SHA256 != p.SHA256 || o.Size != p.Size {
			return fmt.Errorf("%s: sha256 %s size %d, the lock says %s %d", paths[i], o.SHA256, o.Size, p.SHA256, p.Size)
		}
		name := strings.ReplaceAll(p.Name+"_"+p.Version+"_"+p.Architecture, ":", "%3a") + ".deb"
		if err := os.Link(paths[i], filepath.Join(work, name)); err != nil {
			if err := copyFile(paths[i], filepath.Join(work, name)); err != nil {
				return err
			}
		}
	}
	progress(opts, "install", fmt.Sprintf("%d build dependencies", len(l.Packages)))
	var log tailBuffer
	w := io.MultiWriter(&log, opts.Output)
	err := sandbox.Run(ctx, root, []string{"/bin/sh", "-ec", aptInstall}, sandbox.Options{
		SourceDateEpoch: l.SourceDateEpoch, Stdout: w, Stderr: w})
	if err != nil {
		return fmt.Errorf("installing the build dependencies into the base image: %w\n%s", err, log.Tail(30))
	}
	return os.RemoveAll(work)
}
