package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/builder/debrepo"
	"github.com/ingotfleet/ingot/builder/spec"
)

var noCtx = context.Background()

// Prepared is a spec and its lock, with every locked .deb in the cache.
type Prepared struct {
	Spec       *spec.Spec
	Lock       *spec.Lock
	Input      *Input
	SpecSHA256 string
	LockSHA256 string
}

// Prepare loads a spec and its lock, refuses a lock that does not belong
// to the spec, and makes sure every locked .deb is in the download cache
// (downloading what is missing, every file checked against the lock).
func Prepare(ctx context.Context, specPath, lockPath string, cache *debrepo.Cache, progress func(debrepo.Event)) (*Prepared, error) {
	s, err := spec.Load(specPath)
	if err != nil {
		return nil, err
	}
	lockData, err := os.ReadFile(lockPath)
	if err != nil {
		return nil, fmt.Errorf("reading lock: %w (run `ingot lock %s` first)", err, specPath)
	}
	l, err := spec.ParseLock(lockPath, lockData)
	if err != nil {
		return nil, err
	}
	if l.SpecSHA256 != s.ResolveDigest() {
		return nil, fmt.Errorf("%s was not made from %s as it is now (packages, repositories or variant changed): run `ingot lock %s`", lockPath, specPath, specPath)
	}
	paths, err := FetchLock(ctx, s, l, cache, progress)
	if err != nil {
		return nil, err
	}
	in, err := InputFromLock(s, l, paths)
	if err != nil {
		return nil, err
	}
	ls := sha256.Sum256(lockData)
	return &Prepared{Spec: s, Lock: l, Input: in, SpecSHA256: s.Digest(), LockSHA256: hex.EncodeToString(ls[:])}, nil
}

// FetchLock makes sure every package of l is at hand and returns the
// paths of their .deb files in the order of l.Packages: the repository
// packages downloaded into the cache, the spec's local .deb files where
// they are (their hashes are checked against the lock when they are
// used).
func FetchLock(ctx context.Context, s *spec.Spec, l *spec.Lock, cache *debrepo.Cache, progress func(debrepo.Event)) ([]string, error) {
	remote := *l
	remote.Packages = nil
	var at []int
	paths := make([]string, len(l.Packages))
	for i, p := range l.Packages {
		if p.Local != "" {
			paths[i] = s.Path(p.Local)
			continue
		}
		remote.Packages = append(remote.Packages, p)
		at = append(at, i)
	}
	got, err := cache.Fetch(ctx, debrepo.ItemsFromLock(&remote), progress)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		paths[i] = got[j]
	}
	return paths, nil
}

// LocalPackages reads the control of every .deb the spec names (Debs)
// as index entries for the resolver, with Repository -1 (so that one
// wins over a repository package of the same version); MarkLocal turns
// them into local lock entries after resolution.
func LocalPackages(s *spec.Spec) ([]*debrepo.Package, error) {
	var out []*debrepo.Package
	for _, d := range s.Debs {
		p, err := localPackage(s.Path(d))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func localPackage(path string) (*debrepo.Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := deb.NewReader(f, path)
	if err != nil {
		return nil, err
	}
	c, err := r.Control()
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, err
	}
	one := func(k string) string { return strings.Join(strings.Fields(c.Get(k)), " ") }
	p := &debrepo.Package{
		Name: c.Package(), Version: c.Get("Version"), Architecture: c.Get("Architecture"),
		MultiArch: strings.ToLower(c.Get("Multi-Arch")), Essential: strings.EqualFold(c.Get("Essential"), "yes"),
		Priority: c.Get("Priority"), Source: c.Get("Source"),
		PreDepends: one("Pre-Depends"), Depends: one("Depends"), Provides: one("Provides"),
		Conflicts: one("Conflicts"), Breaks: one("Breaks"),
		Filename: filepath.Base(path), Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Repository: -1,
	}
	if p.Name == "" || p.Version == "" || p.Architecture == "" {
		return nil, fmt.Errorf("%s: control lacks Package, Version or Architecture", path)
	}
	return p, nil
}

// LocalRequests are the resolver requests (name=version) for local
// packages.
func LocalRequests(local []*debrepo.Package) []string {
	var out []string
	for _, p := range local {
		out = append(out, p.Name+"="+p.Version)
	}
	return out
}

// MarkLocal rewrites the lock entries of the spec's local packages
// (local[i] made from s.Debs[i]) as local ones.
func MarkLocal(l *spec.Lock, s *spec.Spec, local []*debrepo.Package) {
	for i, lp := range local {
		for j := range l.Packages {
			p := &l.Packages[j]
			if p.Repository == -1 && p.Name == lp.Name && p.Version == lp.Version && p.SHA256 == lp.SHA256 {
				p.Local, p.Filename = s.Debs[i], ""
			}
		}
	}
}

// InputFromLock makes the build input of a spec and its lock, with
// paths[i] the .deb of l.Packages[i].
func InputFromLock(s *spec.Spec, l *spec.Lock, paths []string) (*Input, error) {
	if len(paths) != len(l.Packages) {
		return nil, fmt.Errorf("%d package files for %d locked packages", len(paths), len(l.Packages))
	}
	if len(s.Architectures) == 0 {
		return nil, fmt.Errorf("spec %s has no architecture", s.Name)
	}
	requested := map[string]bool{}
	for _, p := range s.Packages {
		n, _ := spec.PackageName(p)
		requested[n] = true
	}
	// mmdebstrap asks apt for apt itself in the minbase variant, and for
	// every Priority: important package in the important one: those are
	// installed by hand, not automatically.
	if s.Variant == "" || s.Variant == "minbase" || s.Variant == "important" {
		requested["apt"] = true
	}
	in := &Input{
		Architecture:    s.Architectures[0],
		SourceDateEpoch: l.SourceDateEpoch,
		Exclude:         s.Exclude,
		Keep:            s.Keep,
		Customize:       s.Customize,
	}
	if s.SourceDateEpoch != nil {
		in.SourceDateEpoch = *s.SourceDateEpoch
	}
	if s.Overlay != "" {
		in.Overlay = s.Path(s.Overlay)
	}
	for i, p := range l.Packages {
		if s.Variant == "important" && p.Priority == "important" {
			requested[p.Name] = true
		}
		in.Packages = append(in.Packages, Package{
			Name: p.Name, Version: p.Version, Architecture: p.Architecture,
			Path: paths[i], Size: p.Size, SHA256: p.SHA256,
			Requested: requested[p.Name] || p.Local != "",
		})
	}
	var b strings.Builder
	for _, r := range l.Repositories {
		fmt.Fprintf(&b, "deb %s %s %s\n", r.URL, r.Suite, strings.Join(r.Components, " "))
	}
	in.SourcesList = b.String()
	return in, nil
}

// DownloadURLs maps packages of a lock to their repository URLs.
func DownloadURLs(l *spec.Lock) func(p *Package) string {
	urls := map[string]string{}
	for _, p := range l.Packages {
		if p.Local == "" {
			urls[p.Name+"_"+p.Version+"_"+p.Architecture] = l.URL(p)
		}
	}
	return func(p *Package) string { return urls[p.ID()] }
}
