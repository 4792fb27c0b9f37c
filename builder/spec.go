package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

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
	paths, err := cache.Fetch(ctx, debrepo.ItemsFromLock(l), progress)
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
			Requested: requested[p.Name],
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
		urls[p.Name+"_"+p.Version+"_"+p.Architecture] = l.URL(p)
	}
	return func(p *Package) string { return urls[p.ID()] }
}
