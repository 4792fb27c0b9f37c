package pkgbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/ingotfleet/ingot/builder"
	"github.com/ingotfleet/ingot/builder/debrepo"
	"github.com/ingotfleet/ingot/builder/resolve"
	"github.com/ingotfleet/ingot/builder/spec"
)

// Profiles are the build profiles every build runs with: the test suite
// is not run (DEB_BUILD_OPTIONS=nocheck), so its dependencies are not
// installed either. Debian requires nocheck to leave the packages as
// they are.
var Profiles = []string{"nocheck"}

// BuildEssential is what Debian policy lets every build assume besides
// the Essential set.
const BuildEssential = "build-essential"

// Repos are the repositories of a spec with their keyrings, or the
// host's apt sources (below aptRoot) when the spec names none.
func Repos(s *spec.Spec, aptRoot string) ([]debrepo.Repo, error) {
	if len(s.Repositories) == 0 {
		return debrepo.HostRepos(aptRoot)
	}
	var repos []debrepo.Repo
	for i := range s.Repositories {
		r, err := debrepo.RepoFromSpec(s, i)
		if err != nil {
			return nil, err
		}
		repos = append(repos, r)
	}
	return repos, nil
}

// BuildRelations are a source's build relations reduced for one build.
type BuildRelations struct {
	Arch      string
	Profiles  []string
	Depends   string // Build-Depends, -Arch and -Indep, reduced
	Conflicts string // Build-Conflicts, -Arch and -Indep, reduced
}

// Relations reduces the source's build relations for arch and Profiles
// (a binary build makes both arch-dependent and arch: all packages, so
// the -Arch and -Indep fields count).
func (s *Source) BuildRelations(arch string) (*BuildRelations, error) {
	br := &BuildRelations{Arch: arch, Profiles: Profiles}
	var deps, confl []string
	for _, f := range RelationFields {
		r, err := Reduce(s.Relations[f], arch, Profiles)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %s: %w", s.Name, s.Version, f, err)
		}
		if r == "" {
			continue
		}
		if strings.HasPrefix(f, "Build-Depends") {
			deps = append(deps, r)
		} else {
			confl = append(confl, r)
		}
	}
	br.Depends, br.Conflicts = strings.Join(deps, ", "), strings.Join(confl, ", ")
	return br, nil
}

// Digest is what a build lock records as its spec-sha256: the base
// spec's resolve digest, the source's identity and its reduced
// relations. A lock with another digest was made for something else.
func (br *BuildRelations) Digest(s *spec.Spec, src *Source) string {
	h := sha256.New()
	_, _ = fmt.Fprintf(h, "ingot pkg build lock 1\nspec %s\nsource %s %s\narch %s\nprofiles %s\ndepends %s\nconflicts %s\n",
		s.ResolveDigest(), src.Name, src.Version, br.Arch, strings.Join(br.Profiles, " "), br.Depends, br.Conflicts)
	return hex.EncodeToString(h.Sum(nil))
}

// Lock resolves the base's package set, build-essential and the build
// relations together against idx and returns the build lock. The
// relations are resolved as the dependencies of a stand-in package (as
// sbuild does), so alternatives, versions and Build-Conflicts follow the
// resolver's rules for any package. For a spec the lock holds the whole
// build root; for an image only what the image lacks: its installed
// packages are the only candidates of their names, requested at their
// versions, and left out of the lock.
func Lock(ctx context.Context, idx *debrepo.Index, base *Base, src *Source, br *BuildRelations) (*spec.Lock, error) {
	if len(idx.Suites) == 0 {
		return nil, fmt.Errorf("no repository suite to resolve against")
	}
	dummy := &debrepo.Package{
		Name: "ingot-build-deps-" + src.Name, Version: "0", Architecture: br.Arch,
		Depends: br.Depends, Conflicts: br.Conflicts,
		Filename: "ingot-build-deps.deb", SHA256: strings.Repeat("0", 64),
	}
	var (
		pkgs     []*debrepo.Package
		requests []string
		local    []*debrepo.Package
		req      resolve.Request
	)
	if base.Image != nil {
		for _, p := range idx.Packages {
			if !base.Image.has(p.Name, p.Architecture) {
				pkgs = append(pkgs, p)
			}
		}
		pkgs = append(pkgs, base.Image.Installed...)
		req = resolve.Request{Architectures: []string{br.Arch}, Variant: spec.VariantEssential}
		for _, p := range base.Image.Installed {
			n := p.Name
			if p.Architecture != "all" && p.Architecture != br.Arch {
				n += ":" + p.Architecture
				if !slices.Contains(req.Architectures, p.Architecture) {
					req.Architectures = append(req.Architectures, p.Architecture)
				}
			}
			requests = append(requests, n+"="+p.Version)
		}
	} else {
		s := base.Spec
		var err error
		if local, err = builder.LocalPackages(s); err != nil {
			return nil, err
		}
		pkgs = append(append([]*debrepo.Package(nil), idx.Packages...), local...)
		requests = append(append([]string(nil), s.Packages...), builder.LocalRequests(local)...)
		req = resolve.Request{Architectures: s.Architectures, Variant: s.Variant}
	}
	req.Packages = append(requests, BuildEssential, dummy.Name)
	in := &debrepo.Index{Suites: idx.Suites, Packages: append(pkgs, dummy)}
	got, err := resolve.Resolve(ctx, in, req)
	if err != nil {
		return nil, fmt.Errorf("build dependencies of %s %s: %w", src.Name, src.Version, err)
	}
	out := got[:0]
	for _, p := range got {
		if p != dummy && p.Repository != imageRepository {
			out = append(out, p)
		}
	}
	l := resolve.NewLock(idx, out, base.Key(br, src))
	if base.Spec != nil {
		builder.MarkLocal(l, base.Spec, local)
	}
	return l, nil
}
