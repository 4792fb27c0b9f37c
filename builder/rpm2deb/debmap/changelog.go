package debmap

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/ingotfleet/ingot/internal/debversion"
)

// ChangelogEntry is one RPM changelog entry (header tags 1080, 1081, 1082).
type ChangelogEntry struct {
	Time int64  // Unix seconds (rpm stores the day at 12:00 UTC)
	Name string // "Jane Doe <jane@example.com> - 1:2.0-3"
	Text string // "- fixed this\n- and that"
}

var (
	// What an RPM changelog version looks like: [epoch:]version[-release].
	clVersionRE = regexp.MustCompile(`^(?:\d+:)?[A-Za-z0-9._+~^]+(?:-[A-Za-z0-9._+~^]+)?$`)
)

// ChangelogOptions are the package facts a changelog needs.
type ChangelogOptions struct {
	Package    string // Debian package name
	Version    string // Debian version of the package
	Epoch      int64  // the package's epoch, given to entry versions without one
	HasEpoch   bool
	Maintainer string // fallback author "Name <email>"
}

// ChangelogNote says how one entry was written.
type ChangelogNote struct {
	Entry   int    `json:"entry"`          // index, 0 = newest
	Header  string `json:"header"`         // the RPM header line ("* date name")
	Version string `json:"version"`        // the Debian version given to it
	Note    string `json:"note,omitempty"` // "" when the entry's own version was kept
	// Shifted is how many seconds the entry's time was moved back to
	// keep the dates strictly decreasing (rpm has one date per day).
	Shifted int64 `json:"shifted,omitempty"`
	// Author is the "Name <address>" written for the entry when it is
	// not the RPM's, and AuthorNote says why (DebContact's reasons).
	Author     string `json:"author,omitempty"`
	AuthorNote string `json:"author_note,omitempty"`
}

// WriteChangelog turns RPM changelog entries (newest first) into a Debian
// changelog (deb-changelog(5)), one entry per RPM entry, in the same
// order. An entry keeps its own version when it parses and is lower than
// the one above it (the package version for the newest, which may equal
// it); otherwise it gets the version above it with "~" appended, which
// dpkg orders just below it, and its original header line as its first
// line of text. Dates are UTC in RFC 2822 form, each strictly older than
// the one above it (an entry on the same day as the one above is moved
// back by seconds).
func WriteChangelog(entries []ChangelogEntry, o ChangelogOptions) (string, []ChangelogNote) {
	var b strings.Builder
	var notes []ChangelogNote
	above := o.Version
	var aboveTime int64
	for i, e := range entries {
		when, shifted := e.Time, int64(0)
		if i > 0 && when >= aboveTime && aboveTime > math.MinInt64 {
			// Same day as the entry above (rpm keeps only the date):
			// Debian wants every entry older than the one above it.
			shifted = when - (aboveTime - 1)
			when = aboveTime - 1
		}
		aboveTime = when
		author, email, ver := ParseChangelogName(e.Name)
		var contactNotes []string
		if email == "" {
			fa, fe, _ := ParseChangelogName(o.Maintainer)
			if author == "" {
				author = fa
			}
			email = fe
			if email != "" {
				contactNotes = append(contactNotes, "no address: the Maintainer's")
			}
		}
		if author == "" {
			author = "Unknown"
		}
		if email == "" {
			email = UnknownAddress
		}
		contact, cnote := DebContact(author + " <" + email + ">")
		if cnote != "" {
			contactNotes = append(contactNotes, cnote)
		}
		header := fmt.Sprintf("* %s %s", time.Unix(e.Time, 0).UTC().Format("Mon Jan 02 2006"), e.Name)
		dv, note := "", ""
		if ver != "" && clVersionRE.MatchString(ver) {
			ep, hasEp, v, r := SplitEVR(ver)
			if !hasEp && o.HasEpoch {
				ep, hasEp = o.Epoch, true
			}
			dv, _ = DebVersion(ep, hasEp, v, r)
			c := debversion.Compare(dv, above)
			if c > 0 || (c == 0 && i > 0) {
				note = fmt.Sprintf("version %s is not lower than %s above it", dv, above)
				dv = ""
			}
		} else if ver == "" {
			note = "no version in the entry"
		} else {
			note = fmt.Sprintf("version %q does not parse", ver)
		}
		if dv == "" {
			if i == 0 {
				dv = above
			} else {
				dv = above + "~"
			}
		}
		cn := ChangelogNote{Entry: i, Header: header, Version: dv, Note: note, Shifted: shifted}
		if len(contactNotes) > 0 {
			cn.Author, cn.AuthorNote = contact, strings.Join(contactNotes, "; ")
		}
		notes = append(notes, cn)
		above = dv
		fmt.Fprintf(&b, "%s (%s) unstable; urgency=medium\n\n", o.Package, dv)
		if note != "" {
			fmt.Fprintf(&b, "  * RPM changelog line: %s\n", SanitizeLine(strings.TrimPrefix(header, "* ")))
		}
		writeChangelogText(&b, e.Text)
		fmt.Fprintf(&b, "\n -- %s  %s\n", contact, time.Unix(when, 0).UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
		if i != len(entries)-1 {
			b.WriteString("\n")
		}
	}
	return b.String(), notes
}

// ParseChangelogName splits an RPM changelog name line ("Jane Doe
// <jane@example.com> - 1:2.0-3") into its author, address and version,
// each "" when absent.
func ParseChangelogName(s string) (author, email, version string) {
	s = strings.TrimSpace(s)
	lt := strings.IndexByte(s, '<')
	gt := strings.IndexByte(s, '>')
	if lt < 0 || gt < lt {
		// No email: "Name - 1.0-1" or just a name.
		if i := strings.LastIndex(s, " - "); i >= 0 {
			return strings.TrimSpace(s[:i]), "", strings.TrimSpace(s[i+3:])
		}
		return s, "", ""
	}
	author = strings.TrimSpace(s[:lt])
	email = strings.TrimSpace(s[lt+1 : gt])
	rest := strings.TrimSpace(s[gt+1:])
	rest = strings.TrimSpace(strings.TrimPrefix(rest, "-"))
	return author, email, rest
}

// SanitizeLine keeps a value on one line of printable text.
func SanitizeLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// writeChangelogText indents the entry's text as deb-changelog(5) wants:
// RPM's "- item" lines become "  * item", continuation lines are
// indented to match, blank lines are kept (but never two in a row, and
// never at the start or end).
func writeChangelogText(b *strings.Builder, text string) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		b.WriteString("  * (no text)\n")
		return
	}
	blank := false
	inItem := false
	for _, l := range lines {
		l = strings.TrimRight(SanitizeLine(l), " \t")
		t := strings.TrimLeft(l, " \t")
		switch {
		case t == "":
			if !blank {
				b.WriteString("\n")
			}
			blank = true
			continue
		case strings.HasPrefix(t, "- ") || t == "-":
			b.WriteString("  * " + strings.TrimSpace(t[1:]) + "\n")
			inItem = true
		case strings.HasPrefix(t, "* "):
			b.WriteString("  * " + strings.TrimSpace(t[2:]) + "\n")
			inItem = true
		case inItem:
			b.WriteString("    " + t + "\n")
		default:
			b.WriteString("  " + t + "\n")
		}
		blank = false
	}
}
