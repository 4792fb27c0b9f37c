package resolve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"pault.ag/go/debian/version"

	"github.com/ingotfleet/ingot/builder/debrepo"
	"github.com/ingotfleet/ingot/builder/spec"
)

// Request is what to resolve.
type Request struct {
	// Architectures: the first is the native one; others are foreign
	// (Multi-Arch). Packages of architecture "all" are always candidates.
	Architectures []string
	// Variant picks the base set: spec.VariantEssential, VariantMinbase,
	// VariantImportant or VariantStandard.
	Variant string
	// Packages to install on top of the base set: "name" or
	// "name=version".
	Packages []string
}

// ErrUnsatisfiable is returned (wrapped) when no package set meets the
// request: a missing package, a dependency no candidate meets, two
// packages needing different versions of a third, or a conflict.
var ErrUnsatisfiable = errors.New("unsatisfiable")

// cand is one available binary package.
type cand struct {
	pkg   *debrepo.Package
	ver   version.Version
	slot  string // name:arch, with arch "all" counted as native
	arch  string // the slot's architecture
	low   bool   // from a NotAutomatic suite
	deps  []Relation
	confl []Relation
	prov  []Possibility
	why   string // what pulled it in, for messages
}

type provider struct {
	c *cand
	p Possibility // the Provides entry (Op "=" when versioned)
}

type universe struct {
	native string
	byName map[string][]*cand // ordered best first
	provs  map[string][]provider
}

// Resolve computes the package set for req from the index. The result is
// sorted by name and architecture.
func Resolve(ctx context.Context, idx *debrepo.Index, req Request) ([]*debrepo.Package, error) {
	if len(req.Architectures) == 0 {
		return nil, fmt.Errorf("resolve: no architecture")
	}
	u, err := newUniverse(idx, req.Architectures)
	if err != nil {
		return nil, err
	}
	r := &resolver{u: u, sel: map[string]*cand{}, selProv: map[string][]provider{}, ctx: ctx}

	// The base set, decided by each name's best candidate on the native
	// architecture.
	var base []string
	for name, cs := range u.byName {
		c := u.bestOn(cs, u.native)
		if c == nil {
			continue
		}
		p := c.pkg
		switch {
		case p.Essential:
		case req.Variant == spec.VariantEssential:
			continue
		case p.Priority == "required", name == "apt" && req.Variant != spec.VariantEssential:
		case (req.Variant == spec.VariantImportant || req.Variant == spec.VariantStandard) && (p.Priority == "important" || p.Important):
		case req.Variant == spec.VariantStandard && p.Priority == "standard":
		default:
			continue
		}
		base = append(base, name)
	}
	slices.Sort(base)
	for _, name := range base {
		if err := r.install(u.bestOn(u.byName[name], u.native), "the "+req.Variant+" base set"); err != nil {
			return nil, err
		}
	}
	for _, want := range req.Packages {
		name, pin := spec.PackageName(want)
		arch := u.native
		if n, a, ok := strings.Cut(name, ":"); ok {
			name, arch = n, a
			if !slices.Contains(req.Architectures, arch) {
				return nil, fmt.Errorf("package %s: architecture %s is not one of the spec's (%s)", want, arch, strings.Join(req.Architectures, ", "))
			}
		}
		c, err := u.pick(name, pin, arch)
		if err != nil {
			return nil, err
		}
		if err := r.install(c, "the spec"); err != nil {
			return nil, err
		}
	}
	if err := r.close(); err != nil {
		return nil, err
	}
	if err := r.checkConflicts(); err != nil {
		return nil, err
	}
	out := make([]*debrepo.Package, 0, len(r.sel))
	for _, c := range r.sel {
		out = append(out, c.pkg)
	}
	slices.SortFunc(out, func(a, b *debrepo.Package) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Architecture, b.Architecture))
	})
	return out, nil
}

func newUniverse(idx *debrepo.Index, archs []string) (*universe, error) {
	u := &universe{native: archs[0], byName: map[string][]*cand{}, provs: map[string][]provider{}}
	for _, p := range idx.Packages {
		if p.Architecture != "all" && !slices.Contains(archs, p.Architecture) {
			continue
		}
		v, err := version.Parse(p.Version)
		if err != nil {
			return nil, fmt.Errorf("%s: package %s: version %q: %v", suiteName(idx, p), p.Name, p.Version, err)
		}
		arch := p.Architecture
		if arch == "all" {
			arch = u.native
		}
		c := &cand{pkg: p, ver: v, slot: p.Name + ":" + arch, arch: arch}
		if p.Repository >= 0 && p.Repository < len(idx.Suites) && idx.Suites[p.Repository].Release != nil {
			c.low = idx.Suites[p.Repository].Release.NotAutomatic
		}
		u.byName[p.Name] = append(u.byName[p.Name], c)
	}
	for _, cs := range u.byName {
		slices.SortStableFunc(cs, func(a, b *cand) int {
			if a.low != b.low {
				if a.low {
					return 1
				}
				return -1
			}
			if c := version.Compare(b.ver, a.ver); c != 0 {
				return c
			}
			return cmp.Compare(a.pkg.Repository, b.pkg.Repository)
		})
	}
	// Provides are parsed eagerly: a virtual name may be needed by any package.
	for _, cs := range u.byName {
		for _, c := range cs {
			if c.pkg.Provides == "" {
				continue
			}
			rels, err := ParseRelations(c.pkg.Provides)
			if err != nil {
				return nil, fmt.Errorf("package %s %s: Provides: %w", c.pkg.Name, c.pkg.Version, err)
			}
			for _, rel := range rels {
				for _, p := range rel {
					if p.Op != "" && p.Op != "=" {
						return nil, fmt.Errorf("package %s %s: Provides %s: only = is allowed", c.pkg.Name, c.pkg.Version, p)
					}
					c.prov = append(c.prov, p)
					u.provs[p.Name] = append(u.provs[p.Name], provider{c: c, p: p})
				}
			}
		}
	}
	return u, nil
}

func suiteName(idx *debrepo.Index, p *debrepo.Package) string {
	if p.Repository >= 0 && p.Repository < len(idx.Suites) {
		s := idx.Suites[p.Repository]
		return s.URL + " " + s.Suite
	}
	return "index"
}

// bestOn is the best candidate whose slot is on arch.
func (u *universe) bestOn(cs []*cand, arch string) *cand {
	for _, c := range cs {
		if c.arch == arch {
			return c
		}
	}
	return nil
}

// pick finds the candidate for a spec entry on arch: a name (best
// version), name=version, or a virtual name with one provider.
func (u *universe) pick(name, pin, arch string) (*cand, error) {
	cs := u.byName[name]
	if pin != "" {
		var have []string
		for _, c := range cs {
			if c.pkg.Version == pin && c.arch == arch {
				return c, nil
			}
			have = append(have, c.pkg.Version)
		}
		if len(have) == 0 {
			return nil, fmt.Errorf("package %s=%s: %w: no package %s in any repository", name, pin, ErrUnsatisfiable, name)
		}
		return nil, fmt.Errorf("package %s=%s: %w: version %s not available (have %s)", name, pin, ErrUnsatisfiable, pin, strings.Join(have, ", "))
	}
	if c := u.bestOn(cs, arch); c != nil {
		return c, nil
	}
	provs := u.provs[name]
	seen := map[string]bool{}
	var names []string
	for _, p := range provs {
		if !seen[p.c.pkg.Name] {
			seen[p.c.pkg.Name] = true
			names = append(names, p.c.pkg.Name)
		}
	}
	switch len(names) {
	case 0:
		return nil, fmt.Errorf("package %s: %w: not found in any repository", name, ErrUnsatisfiable)
	case 1:
		if c := u.bestOn(u.byName[names[0]], arch); c != nil {
			return c, nil
		}
		return u.bestOn(u.byName[names[0]], u.native), nil
	}
	slices.Sort(names)
	return nil, fmt.Errorf("package %s is virtual, provided by %s: name one of them", name, strings.Join(names, ", "))
}

type resolver struct {
	ctx     context.Context
	u       *universe
	sel     map[string]*cand      // by slot
	selProv map[string][]provider // Provides of selected packages, by virtual name
	queue   []*cand
}

// install selects c (if its slot is free) and queues its dependencies.
func (r *resolver) install(c *cand, why string) error {
	if c == nil {
		return fmt.Errorf("%w: no candidate (needed by %s)", ErrUnsatisfiable, why)
	}
	if have, ok := r.sel[c.slot]; ok {
		if have == c || have.pkg.Version == c.pkg.Version {
			return nil
		}
		return fmt.Errorf("%w: %s needs %s %s, but %s %s is already selected (needed by %s)",
			ErrUnsatisfiable, why, c.pkg.Name, c.pkg.Version, have.pkg.Name, have.pkg.Version, have.why)
	}
	c.why = why
	r.sel[c.slot] = c
	for _, p := range c.prov {
		r.selProv[p.Name] = append(r.selProv[p.Name], provider{c: c, p: p})
	}
	r.queue = append(r.queue, c)
	return nil
}

func (r *resolver) close() error {
	for len(r.queue) > 0 {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		c := r.queue[0]
		r.queue = r.queue[1:]
		if err := r.parse(c); err != nil {
			return err
		}
		for _, rel := range c.deps {
			if r.satisfied(rel, c) {
				continue
			}
			if err := r.satisfy(rel, c); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *resolver) parse(c *cand) error {
	if c.deps != nil || c.confl != nil {
		return nil
	}
	for _, f := range []struct{ name, val string }{{"Pre-Depends", c.pkg.PreDepends}, {"Depends", c.pkg.Depends}} {
		rels, err := ParseRelations(f.val)
		if err != nil {
			return fmt.Errorf("package %s %s: %s: %w", c.pkg.Name, c.pkg.Version, f.name, err)
		}
		c.deps = append(c.deps, rels...)
	}
	for _, f := range []struct{ name, val string }{{"Conflicts", c.pkg.Conflicts}, {"Breaks", c.pkg.Breaks}} {
		rels, err := ParseRelations(f.val)
		if err != nil {
			return fmt.Errorf("package %s %s: %s: %w", c.pkg.Name, c.pkg.Version, f.name, err)
		}
		c.confl = append(c.confl, rels...)
	}
	if c.deps == nil {
		c.deps = []Relation{}
	}
	return nil
}

// archOK reports whether a package in slot architecture of c can satisfy
// possibility p of a package (from) on fromArch, following Multi-Arch.
func (u *universe) archOK(c *cand, p Possibility, fromArch string) bool {
	switch p.Qualifier {
	case "":
		return c.arch == fromArch || c.pkg.MultiArch == "foreign" || c.pkg.Architecture == "all"
	case "any":
		return c.pkg.MultiArch == "allowed" || c.arch == fromArch
	case "native":
		return c.arch == u.native
	default:
		return c.arch == p.Qualifier
	}
}

// satisfied reports whether a selected package meets rel for from.
func (r *resolver) satisfied(rel Relation, from *cand) bool {
	for _, p := range rel {
		for _, c := range r.u.byName[p.Name] {
			if s, ok := r.sel[c.slot]; ok && s == c && r.u.archOK(c, p, from.arch) && p.SatisfiedBy(c.ver) {
				return true
			}
		}
		for _, pr := range r.selProv[p.Name] {
			if r.u.archOK(pr.c, p, from.arch) && provides(pr.p, p) {
				return true
			}
		}
	}
	return false
}

// provides reports whether a Provides entry meets a possibility: an
// unversioned dependency takes any, a versioned one only "= version".
func provides(prov, want Possibility) bool {
	if want.Op == "" {
		return true
	}
	return prov.Op == "=" && want.SatisfiedBy(prov.ParsedVersion())
}

var priorityRank = map[string]int{"required": 0, "important": 1, "standard": 2, "optional": 3, "extra": 4}

func rank(p string) int {
	if r, ok := priorityRank[p]; ok {
		return r
	}
	return 5
}

// satisfy selects a package for rel: the first alternative that a real
// package can meet (best version), else one whose virtual name a provider
// meets.
func (r *resolver) satisfy(rel Relation, from *cand) error {
	why := fmt.Sprintf("%s %s (%s)", from.pkg.Name, from.pkg.Version, rel)
	var reasons []string
	for _, p := range rel {
		var blocked *cand
		for _, c := range r.u.byName[p.Name] {
			if !r.u.archOK(c, p, from.arch) || !p.SatisfiedBy(c.ver) {
				continue
			}
			if have, ok := r.sel[c.slot]; ok && have != c {
				blocked = have
				continue
			}
			return r.install(c, why)
		}
		if blocked != nil {
			reasons = append(reasons, fmt.Sprintf("%s %s is selected (needed by %s)", blocked.pkg.Name, blocked.pkg.Version, blocked.why))
			continue
		}
		var provs []provider
		for _, pr := range r.u.provs[p.Name] {
			if !r.u.archOK(pr.c, p, from.arch) || !provides(pr.p, p) {
				continue
			}
			if have, ok := r.sel[pr.c.slot]; ok && have != pr.c {
				continue
			}
			// Only a name's best candidate stands in for it.
			if best := r.u.bestOn(r.u.byName[pr.c.pkg.Name], pr.c.arch); best != pr.c {
				if _, taken := r.sel[pr.c.slot]; !taken {
					continue
				}
			}
			provs = append(provs, pr)
		}
		if len(provs) > 0 {
			slices.SortStableFunc(provs, func(a, b provider) int {
				return cmp.Or(cmp.Compare(rank(a.c.pkg.Priority), rank(b.c.pkg.Priority)), strings.Compare(a.c.pkg.Name, b.c.pkg.Name))
			})
			return r.install(provs[0].c, why)
		}
		if len(r.u.byName[p.Name]) > 0 {
			var vs []string
			for _, c := range r.u.byName[p.Name] {
				vs = append(vs, c.pkg.Version+" ("+c.pkg.Architecture+")")
			}
			reasons = append(reasons, fmt.Sprintf("%s: available %s", p.Name, strings.Join(vs, ", ")))
		} else {
			reasons = append(reasons, fmt.Sprintf("%s: no package or provider", p.Name))
		}
	}
	return fmt.Errorf("%w: %s %s depends on %s, but %s", ErrUnsatisfiable, from.pkg.Name, from.pkg.Version, rel, strings.Join(reasons, "; "))
}

// checkConflicts refuses a result in which a package conflicts with or
// breaks another selected package.
func (r *resolver) checkConflicts() error {
	for _, s := range slices.Sorted(maps.Keys(r.sel)) {
		c := r.sel[s]
		if err := r.parse(c); err != nil {
			return err
		}
		for _, rel := range c.confl {
			for _, p := range rel {
				for _, o := range r.u.byName[p.Name] {
					if o == c || r.sel[o.slot] != o || !r.u.archOK(o, p, c.arch) || !p.SatisfiedBy(o.ver) {
						continue
					}
					return fmt.Errorf("%w: %s %s conflicts with %s, but %s %s is selected (needed by %s)",
						ErrUnsatisfiable, c.pkg.Name, c.pkg.Version, p, o.pkg.Name, o.pkg.Version, o.why)
				}
				for _, pr := range r.selProv[p.Name] {
					// A package may conflict with a virtual name it provides itself.
					if pr.c == c || pr.c.pkg.Name == c.pkg.Name || !provides(pr.p, p) {
						continue
					}
					return fmt.Errorf("%w: %s %s conflicts with %s, but %s %s provides it (needed by %s)",
						ErrUnsatisfiable, c.pkg.Name, c.pkg.Version, p, pr.c.pkg.Name, pr.c.pkg.Version, pr.c.why)
				}
			}
		}
	}
	return nil
}
