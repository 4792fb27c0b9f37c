package differ

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Format is a rendering of a Report.
type Format int

// The report formats.
const (
	FormatText Format = iota
	FormatJSON
	FormatHTML
)

// ParseFormat reads a --format value: text, json or html.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "text", "":
		return FormatText, nil
	case "json":
		return FormatJSON, nil
	case "html":
		return FormatHTML, nil
	}
	return 0, fmt.Errorf("unknown report format %q (want text, json or html)", s)
}

// Write renders r in format f.
func (r *Report) Write(w io.Writer, f Format) error {
	switch f {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(r)
	case FormatHTML:
		return r.writeHTML(w)
	}
	return r.writeText(w)
}

// SummaryLines are the summary at the top of every format.
func (r *Report) SummaryLines() []string {
	s := r.Summary
	lines := []string{
		fmt.Sprintf("%s %s: %d added, %d removed, %d changed", Plural(s.Paths, "path"), verb(s.Paths, "differ"), s.Added, s.Removed, s.Changed),
		fmt.Sprintf("packages: %d upgraded, %d downgraded, %d added, %d removed",
			s.PackagesUpgraded, s.PackagesDowngraded, s.PackagesAdded, s.PackagesRemoved),
	}
	if s.MtimeOnlyIgnored > 0 {
		lines = append(lines, fmt.Sprintf("%s %s only in mtime: ignored (--mtime shows them)", Plural(s.MtimeOnlyIgnored, "path"), verb(s.MtimeOnlyIgnored, "differ")))
	}
	if s.Alerts > 0 {
		lines = append(lines, fmt.Sprintf("%s: setuid/setgid/sticky bits or capabilities (lines marked !!)", Plural(s.Alerts, "alert")))
	}
	if r.Identical() {
		lines = append(lines, "the images are identical")
	}
	return lines
}

// groupTitle names a group in the reports.
func groupTitle(g *Group) string {
	if g.Package == "" {
		return "unowned (no package's file list names these paths)"
	}
	return "package " + g.Package
}

// entryText is a one-line description of an added or removed entry.
func entryText(v *EntryView) string {
	if v == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(v.Type)
	if v.Hardlink != "" {
		b.WriteString(" of " + v.Hardlink)
	}
	if v.Mode != "" {
		fmt.Fprintf(&b, " mode=%s", v.Mode)
		fmt.Fprintf(&b, " owner=%d:%d", v.UID, v.GID)
		if v.Uname != "" || v.Gname != "" {
			fmt.Fprintf(&b, "(%s:%s)", orNone(v.Uname), orNone(v.Gname))
		}
	}
	if v.Type == "file" {
		fmt.Fprintf(&b, " size=%d sha256=%s", v.Size, v.SHA256)
	}
	if v.Link != "" {
		b.WriteString(" -> " + v.Link)
	}
	if v.Device != "" {
		b.WriteString(" device=" + v.Device)
	}
	keys := make([]string, 0, len(v.Xattrs))
	for k := range v.Xattrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " xattr.%s=%s", k, v.Xattrs[k])
	}
	return b.String()
}

// attrText is one changed attribute in words.
func attrText(a AttrChange) string {
	if a.Key == "hardlink" {
		return "hardlink: now " + a.New + " (was " + a.Old + ")"
	}
	return a.Key + ": " + a.Old + " -> " + a.New
}

func (r *Report) writeText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	// bw keeps the first write error; Flush at the end returns it.
	p := func(format string, a ...any) { _, _ = fmt.Fprintf(bw, format, a...) }
	p("# ingot diff report v%d\n", r.Version)
	p("# a: %s\n# b: %s\n", r.A, r.B)
	for _, l := range r.SummaryLines() {
		p("summary: %s\n", l)
	}
	if len(r.Packages) > 0 {
		p("\n== packages\n")
		width := 0
		for _, pc := range r.Packages {
			width = max(width, len(pc.Name))
		}
		for _, pc := range r.Packages {
			switch pc.Change {
			case "added":
				p("package %-10s %-*s %s\n", pc.Change, width, pc.Name, pc.New)
			case "removed":
				p("package %-10s %-*s %s\n", pc.Change, width, pc.Name, pc.Old)
			default:
				p("package %-10s %-*s %s -> %s\n", pc.Change, width, pc.Name, pc.Old, pc.New)
			}
		}
		for _, pc := range r.Packages {
			if pc.Change == "removed" {
				continue
			}
			if len(pc.Changelog) == 0 && pc.ChangelogNote == "" {
				continue
			}
			p("\n== changelog %s %s\n", pc.Name, pc.VersionsText())
			if pc.ChangelogNote != "" {
				p("changelog %s: %s\n", pc.Name, pc.ChangelogNote)
			}
			WriteChangelogText(bw, pc.Changelog)
		}
	}
	for gi := range r.Groups {
		g := &r.Groups[gi]
		p("\n== %s: %s\n", groupTitle(g), Plural(len(g.Changes), "path"))
		for _, c := range g.Changes {
			WriteChangeText(bw, &c)
		}
	}
	return bw.Flush()
}

// VersionsText is the versions of a package change as the text report
// prints them: "NEW", "OLD" or "OLD -> NEW".
func (pc PackageChange) VersionsText() string {
	switch pc.Change {
	case "added":
		return pc.New
	case "removed":
		return pc.Old
	}
	return pc.Old + " -> " + pc.New
}

// Plural is "1 path", "2 paths".
func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// verb agrees a present-tense verb with a count: "1 path differs".
func verb(n int, v string) string {
	if n == 1 {
		return v + "s"
	}
	return v
}

// WriteQuoted prints text as the text reports quote changelogs and
// scripts: each line after "  | ", trailing spaces trimmed. bw keeps the
// first write error; the caller's Flush returns it.
func WriteQuoted(bw *bufio.Writer, text string) {
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		_, _ = bw.WriteString(strings.TrimRight("  | "+l, " ") + "\n") // kept in bw
	}
}

// WriteChangelogText prints changelog entries quoted, "  |" between two.
func WriteChangelogText(bw *bufio.Writer, entries []ChangelogEntry) {
	for i, e := range entries {
		if i > 0 {
			_, _ = bw.WriteString("  |\n") // kept in bw
		}
		WriteQuoted(bw, e.Text())
	}
}

// WriteChangeText prints one changed path: a line per attribute, each
// starting with the kind and the path, so grep finds all of a path. bw
// keeps the first write error; the caller's Flush returns it.
func WriteChangeText(bw *bufio.Writer, c *Change) {
	// bw keeps the first write error; Flush at the end returns it.
	p := func(format string, a ...any) { _, _ = fmt.Fprintf(bw, format, a...) }
	head := fmt.Sprintf("%-7s %s", c.Kind, c.Path)
	switch c.Kind {
	case Added:
		p("%s  %s\n", head, entryText(c.New))
	case Removed:
		p("%s  %s\n", head, entryText(c.Old))
	default:
		for _, a := range c.Attrs {
			p("%s  %s\n", head, attrText(a))
		}
	}
	if len(c.Owners) > 0 {
		p("%s  owners: %s\n", head, strings.Join(c.Owners, ", "))
	}
	for _, a := range c.Alerts {
		p("%s  !! %s\n", head, strings.ToUpper(a[:1])+a[1:])
	}
	if c.Content != nil {
		if c.Content.Note != "" {
			p("%s  content: %s\n", head, c.Content.Note)
		}
		if c.Content.Diff != "" {
			for _, l := range strings.SplitAfter(strings.TrimSuffix(c.Content.Diff, "\n"), "\n") {
				p("    %s", l)
			}
			p("\n")
		}
	}
}
