package review

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/ingotfleet/ingot/differ"
)

// Write renders a review as text or JSON (HTML is not offered for reviews).
func (rv *Report) Write(w io.Writer, f differ.Format) error {
	switch f {
	case differ.FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(rv)
	case differ.FormatHTML:
		return fmt.Errorf("ingot review writes text or json, not html")
	}
	return rv.writeText(w)
}

func countKinds(cs []differ.Change) string {
	var a, r, c int
	for _, x := range cs {
		switch x.Kind {
		case differ.Added:
			a++
		case differ.Removed:
			r++
		default:
			c++
		}
	}
	return fmt.Sprintf("%d added, %d changed, %d removed", a, c, r)
}

func (rv *Report) writeText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	// bw keeps the first write error; Flush at the end returns it.
	p := func(format string, a ...any) { _, _ = fmt.Fprintf(bw, format, a...) }
	pkg := rv.Package
	p("# ingot review report v%d\n", rv.Version)
	p("# base: %s\n", rv.Base)
	p("# package: %s %s %s\n", pkg.Name, pkg.Version, pkg.Architecture)
	if rv.BaseVersion != "" {
		p("summary: upgrades %s from %s in the base image\n", pkg.Name, rv.BaseVersion)
	} else {
		p("summary: %s is new to the base image\n", pkg.Name)
	}
	p("summary: its own files: %s\n", countKinds(rv.Files))
	p("summary: outside its file list: %s; %s, %s; %s, %s\n", differ.Plural(len(rv.Outside), "path"),
		differ.Plural(len(rv.Users), "user change"), differ.Plural(len(rv.Groups), "group change"),
		differ.Plural(len(rv.Services), "service link"), differ.Plural(len(rv.Alternatives), "alternative"))
	p("summary: dependencies installed or changed: %d\n", len(rv.Dependencies))
	if n := rv.Diff.Summary.Alerts; n > 0 {
		p("summary: %s: setuid/setgid/sticky bits or capabilities (lines marked !!)\n", differ.Plural(n, "alert"))
	}
	if len(rv.Dependencies) > 0 {
		p("\n== dependencies\n")
		for _, pc := range rv.Dependencies {
			p("package %-10s %s %s\n", pc.Change, pc.Name, pc.VersionsText())
		}
	}
	accounts := func(title, noun string, cs []AccountChange) {
		p("\n== %s: %d\n", title, len(cs))
		for _, c := range cs {
			switch c.Kind {
			case differ.Added:
				p("%-7s %s %s  %s\n", c.Kind, noun, c.Name, c.New)
			case differ.Removed:
				p("%-7s %s %s  %s\n", c.Kind, noun, c.Name, c.Old)
			default:
				p("%-7s %s %s  %s -> %s\n", c.Kind, noun, c.Name, c.Old, c.New)
			}
		}
	}
	accounts("users (etc/passwd)", "user", rv.Users)
	accounts("groups (etc/group)", "group", rv.Groups)
	section := func(title string, cs []differ.Change) {
		p("\n== %s: %s\n", title, differ.Plural(len(cs), "path"))
		for i := range cs {
			differ.WriteChangeText(bw, &cs[i])
		}
	}
	section("services enabled or changed", rv.Services)
	section("alternatives", rv.Alternatives)
	section("outside every package's file list (made by maintainer scripts)", rv.Outside)
	section("files of "+pkg.Name, rv.Files)
	p("\n== dpkg database (var/lib/dpkg) outside the file lists: %s\n", differ.Plural(len(rv.Bookkeeping), "path"))
	for _, c := range rv.Bookkeeping {
		p("%-7s %s\n", c.Kind, c.Path)
	}
	p("\n== conffiles of %s: %d\n", pkg.Name, len(pkg.Conffiles))
	for _, c := range pkg.Conffiles {
		p("conffile %s\n", c)
	}
	p("\n== maintainer scripts of %s: %d\n", pkg.Name, len(pkg.Scripts))
	for _, s := range pkg.Scripts {
		p("-- %s\n", s.Name)
		differ.WriteQuoted(bw, s.Text)
	}
	p("\n== changelog of %s", pkg.Name)
	if rv.BaseVersion != "" {
		p(" since %s", rv.BaseVersion)
	}
	p("\n")
	if rv.ChangelogNote != "" {
		p("changelog: %s\n", rv.ChangelogNote)
	}
	differ.WriteChangelogText(bw, rv.Changelog)
	for gi := range rv.Deps {
		g := &rv.Deps[gi]
		section("files of dependency "+g.Package, g.Changes)
	}
	return bw.Flush()
}
