package rpm2deb

import (
	"fmt"
	"strings"

	"github.com/ingotfleet/ingot/builder/rpm"
	"github.com/ingotfleet/ingot/builder/rpm2deb/debmap"
	"github.com/ingotfleet/ingot/images"
)

// relations holds the control file's relationship fields.
type relations struct {
	preDepends, depends, recommends, suggests relationSet
	conflicts, breaks, replaces, provides     relationSet
}

// control builds the control file's text.
func (c *converter) control() (string, error) {
	p := c.p
	var rel relations
	if err := c.mapRequires(&rel); err != nil {
		return "", err
	}
	if err := c.mapOthers(&rel); err != nil {
		return "", err
	}
	if len(c.caps) > 0 {
		rel.depends.add("libcap2-bin")
		c.rep.add(Approximated, "Depends", "(file capabilities)", "libcap2-bin", "added: postinst runs setcap")
	}
	// A package in Pre-Depends need not be in Depends too.
	var deps relationSet
	for _, d := range rel.depends.list {
		if !rel.preDepends.seen[d] {
			deps.add(d)
		}
	}
	maint, src, raw, note := c.maintainer()
	if note != "" {
		c.rep.add(Approximated, "Maintainer", src+": "+raw, maint, note)
	} else {
		c.rep.add(Mapped, "Maintainer", src+": "+raw, maint, "")
	}
	section, ok := debmap.DebSection(p.Str(rpm.TagGroup))
	if p.Str(rpm.TagGroup) != "" {
		if ok {
			c.rep.add(Mapped, "Group", p.Str(rpm.TagGroup), "Section: "+section, "")
		} else {
			c.rep.add(Approximated, "Group", p.Str(rpm.TagGroup), "Section: "+section, "no closer Debian section")
		}
	}
	var size int64
	for _, f := range c.files {
		if f.Type == images.TypeFile {
			size += (f.Size + 1023) / 1024
		} else {
			size++
		}
	}
	var b strings.Builder
	controlField(&b, "Package", c.pkg)
	controlField(&b, "Version", c.ver)
	controlField(&b, "Architecture", c.arch)
	controlField(&b, "Maintainer", maint)
	controlField(&b, "Installed-Size", fmt.Sprint(size))
	controlField(&b, "Pre-Depends", rel.preDepends.String())
	controlField(&b, "Depends", deps.String())
	controlField(&b, "Recommends", rel.recommends.String())
	controlField(&b, "Suggests", rel.suggests.String())
	controlField(&b, "Breaks", rel.breaks.String())
	controlField(&b, "Conflicts", rel.conflicts.String())
	controlField(&b, "Replaces", rel.replaces.String())
	controlField(&b, "Provides", rel.provides.String())
	controlField(&b, "Section", section)
	controlField(&b, "Priority", "optional")
	if u := strings.TrimSpace(debmap.SanitizeLine(p.Str(rpm.TagURL))); u != "" {
		controlField(&b, "Homepage", u)
		c.rep.add(Mapped, "URL", u, "Homepage", "")
	}
	summary := p.Str(rpm.TagSummary)
	if strings.TrimSpace(summary) == "" {
		summary = p.PkgName()
	}
	desc, note := formatDescription(summary, p.Str(rpm.TagDescription), "Converted by ingot rpm2deb from the RPM "+p.NEVRA()+".")
	controlField(&b, "Description", desc)
	if note != "" {
		c.rep.add(Approximated, "Summary", "Summary, Description", "Description", note)
	} else {
		c.rep.add(Mapped, "Summary", "Summary, Description", "Description", "")
	}
	return b.String(), nil
}

// mapRequires turns Requires into Pre-Depends and Depends.
func (c *converter) mapRequires(rel *relations) error {
	reqs, err := readDeps(c.p, rpm.TagRequireName, rpm.TagRequireFlags, rpm.TagRequireVersion)
	if err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	var sonames []Dep
	for _, d := range reqs {
		set := &rel.depends
		field := "Depends"
		if d.Flags&(rpm.SenseScriptPre|rpm.SensePreTrans) != 0 && d.Flags&rpm.SenseInterp == 0 {
			set, field = &rel.preDepends, "Pre-Depends"
		}
		switch kind := classifyDep(d.Name); {
		case d.Flags&rpm.SenseRPMLib != 0 || kind == "rpmlib":
			c.rep.add(Dropped, "Requires", d.String(), "", "rpmlib() feature of rpm itself")
		case kind == "config":
			c.rep.add(Dropped, "Requires", d.String(), "", "config() is rpm bookkeeping; conffiles cover it")
		case d.Flags&rpm.SenseInterp != 0:
			c.rep.add(Dropped, "Requires", d.String(), "", "scriptlet interpreter")
		case kind == "file":
			c.resolveFile(d, set, field)
		case kind == "soname":
			sonames = append(sonames, d)
		case kind == "virtual":
			c.rep.add(Dropped, "Requires", d.String(), "", "rpm virtual capability with no Debian name")
		case kind == "rich":
			rels, note := c.mapRich(d)
			if rels == nil {
				c.rep.add(Dropped, "Requires", d.String(), "", "rich (boolean) dependency: "+note)
				continue
			}
			set.add(rels...)
			c.rep.add(Approximated, "Requires", d.String(), field+": "+strings.Join(rels, ", "), note)
		default:
			rs, notes := mapVersioned(debmap.DebName(d.Name), d)
			strs := relStrings(rs)
			set.add(strs...)
			action := Mapped
			if len(notes) > 0 || debmap.DebName(d.Name) != d.Name {
				action = Approximated
			}
			c.rep.add(action, "Requires", d.String(), field+": "+strings.Join(strs, ", "), strings.Join(notes, "; "))
		}
	}
	for _, g := range groupSonames(sonames) {
		from := strings.Join(g.Deps, " ")
		if c.opts.Resolver == nil {
			c.rep.add(Unresolved, "Requires", from, "", "soname: no --target to resolve it against")
			continue
		}
		dep, err := c.opts.Resolver.Soname(g.Soname, g.Versions, g.Bits64)
		if err != nil {
			return fmt.Errorf("resolving %s: %w", g.Soname, err)
		}
		if dep == "" {
			c.rep.add(Unresolved, "Requires", from, "", "no package in the target has "+g.Soname)
			continue
		}
		if c.opts.Resolver.Essential(dep) {
			c.rep.add(Dropped, "Requires", from, "", "library of "+dep+", an Essential package: always installed")
			continue
		}
		rel.depends.add(dep)
		c.rep.add(Mapped, "Requires", from, "Depends: "+dep, "soname resolved in the target")
	}
	return nil
}

func (c *converter) resolveFile(d Dep, set *relationSet, field string) {
	if c.opts.Resolver == nil {
		c.rep.add(Unresolved, "Requires", d.String(), "", "file: no --target to resolve it against")
		return
	}
	pkg, err := c.opts.Resolver.FileOwner(d.Name)
	if err != nil {
		c.rep.add(Unresolved, "Requires", d.String(), "", err.Error())
		return
	}
	if pkg == "" {
		c.rep.add(Unresolved, "Requires", d.String(), "", "no package in the target has the file")
		return
	}
	if c.opts.Resolver.Essential(pkg) {
		c.rep.add(Dropped, "Requires", d.String(), "", "file of "+pkg+", an Essential package: always installed, and Debian packages never depend on one without a version")
		return
	}
	set.add(pkg)
	c.rep.add(Mapped, "Requires", d.String(), field+": "+pkg, "file resolved in the target")
}

func relStrings(rs []debRelation) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

// mapOthers maps Provides, Conflicts, Obsoletes, Recommends, Suggests.
func (c *converter) mapOthers(rel *relations) error {
	type field struct {
		rpm                  string
		name, flags, version int
		sets                 []*relationSet
		deb                  string
	}
	for _, fd := range []field{
		{"Provides", rpm.TagProvideName, rpm.TagProvideFlags, rpm.TagProvideVersion, []*relationSet{&rel.provides}, "Provides"},
		{"Conflicts", rpm.TagConflictName, rpm.TagConflictFlags, rpm.TagConflictVersion, []*relationSet{&rel.conflicts}, "Conflicts"},
		{"Obsoletes", rpm.TagObsoleteName, rpm.TagObsoleteFlags, rpm.TagObsoleteVersion, []*relationSet{&rel.breaks, &rel.replaces}, "Breaks, Replaces"},
		{"Recommends", rpm.TagRecommendName, rpm.TagRecommendFlags, rpm.TagRecommendVersion, []*relationSet{&rel.recommends}, "Recommends"},
		{"Suggests", rpm.TagSuggestName, rpm.TagSuggestFlags, rpm.TagSuggestVersion, []*relationSet{&rel.suggests}, "Suggests"},
	} {
		deps, err := readDeps(c.p, fd.name, fd.flags, fd.version)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		for _, d := range deps {
			kind := classifyDep(d.Name)
			name := debmap.DebName(d.Name)
			switch {
			case kind == "config" || kind == "rpmlib":
				c.rep.add(Dropped, fd.rpm, d.String(), "", "rpm bookkeeping")
				continue
			case kind != "package":
				c.rep.add(Dropped, fd.rpm, d.String(), "", kind+": no Debian equivalent")
				continue
			case fd.rpm == "Provides" && name == c.pkg:
				c.rep.add(Dropped, fd.rpm, d.String(), "", "the package itself")
				continue
			}
			var rs []debRelation
			var notes []string
			if fd.rpm == "Provides" {
				// Debian Provides take only "=": keep the version exactly.
				r := debRelation{Name: name}
				if d.Version != "" && d.Flags&rpm.SenseEqual != 0 {
					ep, hasEp, v, rl := debmap.SplitEVR(d.Version)
					r.Op = "="
					r.Ver, notes = debmap.DebVersion(ep, hasEp, v, rl)
				} else if d.Version != "" {
					notes = append(notes, "Debian Provides only take '=': version dropped")
				}
				rs = []debRelation{r}
			} else {
				rs, notes = mapVersioned(name, d)
			}
			strs := relStrings(rs)
			for _, s := range fd.sets {
				s.add(strs...)
			}
			action := Mapped
			if len(notes) > 0 || name != d.Name {
				action = Approximated
			}
			c.rep.add(action, fd.rpm, d.String(), fd.deb+": "+strings.Join(strs, ", "), strings.Join(notes, "; "))
		}
	}
	for _, t := range []int{rpm.TagSupplementName, rpm.TagEnhanceName} {
		for _, n := range c.p.Strings(t) {
			what := "Supplements"
			if t == rpm.TagEnhanceName {
				what = "Enhances"
			}
			c.rep.add(Dropped, what, n, "", "reverse dependency; not mapped")
		}
	}
	return nil
}

// controlMembers builds control.tar's files: control, md5sums,
// conffiles and maintainer scripts.
func (c *converter) controlMembers(control string) ([]controlMember, error) {
	members := []controlMember{}
	var scripts []controlMember
	nevra := c.p.NEVRA()
	for _, s := range scriptlets {
		body := c.p.Str(s.bodyTag)
		prog := scriptProg(c.p, s.progTag)
		extra := ""
		if s.debName == "postinst" {
			extra = capsScript(c.caps)
		}
		if body == "" && len(prog) == 0 && extra == "" {
			continue
		}
		text, ok := buildScript(s, nevra, body, prog, extra)
		if !ok {
			c.rep.add(Unsupported, s.rpmName, "Lua scriptlet", "", "dpkg cannot run Lua scriptlets; dropped")
			continue
		}
		progName := "/bin/sh"
		if len(prog) > 0 {
			progName = strings.Join(prog, " ")
		}
		c.rep.add(Approximated, s.rpmName, progName, s.debName, s.shimNotes)
		scripts = append(scripts, controlMember{Name: s.debName, Mode: 0o755, Data: []byte(text)})
	}
	for _, o := range otherScripts {
		if c.p.Has(o.tag) {
			n := len(c.p.Strings(o.tag))
			c.rep.add(Unsupported, o.name, fmt.Sprintf("%d script(s)", n), "", "dpkg has no equivalent; not converted")
		}
	}
	if names := c.p.Strings(rpm.TagTriggerName); len(names) > 0 {
		c.rep.add(Unsupported, "triggers", strings.Join(names, ", "), "", "watched packages of the unconverted triggers")
	}
	members = append(members, controlMember{Name: "control", Mode: 0o644, Data: []byte(control)})
	members = append(members, scripts...)
	return members, nil
}

// finishMembers adds md5sums and conffiles once the file list is final.
func (c *converter) finishMembers(members []controlMember) []controlMember {
	conf := map[string]bool{}
	for _, p := range c.conf {
		conf[p] = true
	}
	var md5 strings.Builder
	for _, f := range c.files {
		if (f.Type == images.TypeFile || f.Type == images.TypeHardlink) && !conf["/"+f.Path] {
			sum := f.MD5
			if f.Type == images.TypeHardlink {
				sum = c.byPath[f.Link].MD5
			}
			fmt.Fprintf(&md5, "%s  %s\n", sum, f.Path)
		}
	}
	if md5.Len() > 0 {
		members = append(members, controlMember{Name: "md5sums", Mode: 0o644, Data: []byte(md5.String())})
	}
	if len(c.conf) > 0 {
		members = append(members, controlMember{Name: "conffiles", Mode: 0o644, Data: []byte(strings.Join(c.conf, "\n") + "\n")})
	}
	return members
}

// mapRich maps a flat rich dependency: "(a or b)" → "a | b", "(a and b)"
// → "a, b", when every term is a plain package relation with one Debian
// relation. It returns nil and the reason otherwise.
func (c *converter) mapRich(d Dep) ([]string, string) {
	op, terms, ok := parseRich(d.Name)
	if !ok {
		return nil, "only flat 'or' and 'and' expressions are mapped"
	}
	var parts []string
	for _, t := range terms {
		if classifyDep(t.Name) != "package" {
			return nil, t.Name + " is not a package name"
		}
		rs, _ := mapVersioned(debmap.DebName(t.Name), t)
		if op == "or" && len(rs) != 1 {
			return nil, t.String() + " needs a version range, which an alternative cannot hold"
		}
		parts = append(parts, relStrings(rs)...)
	}
	if op == "or" {
		return []string{strings.Join(parts, " | ")}, "boolean 'or' as Debian alternatives"
	}
	return parts, "boolean 'and' as separate relations"
}
