package rpm2deb

import (
	"fmt"
	"io"
	"strings"

	"github.com/ingotfleet/ingot/builder/rpm2deb/debmap"
)

// Actions of a report item.
const (
	Mapped       = "mapped"       // kept, in Debian's form
	Approximated = "approximated" // kept, but dpkg will not behave exactly as rpm
	Dropped      = "dropped"      // left out on purpose
	Unresolved   = "unresolved"   // a file or soname dependency no target package answers
	Unsupported  = "unsupported"  // RPM behaviour dpkg has no place for (fatal with Strict)
)

// ReportItem is one thing the conversion did to a piece of the RPM.
type ReportItem struct {
	Action string `json:"action"`
	What   string `json:"what"` // "Name", "Requires", "%pretrans", "file" …
	From   string `json:"from"`
	To     string `json:"to,omitempty"`
	Note   string `json:"note,omitempty"`
}

// LintianTag is one line of lintian's output.
type LintianTag struct {
	Severity string `json:"severity"` // E, W, I, P, X, O, C
	Tag      string `json:"tag"`
	Info     string `json:"info,omitempty"`
}

// Report is everything one conversion mapped, dropped or approximated.
type Report struct {
	Input        string                 `json:"input"`
	RPM          string                 `json:"rpm"` // name-[epoch:]version-release.arch
	Output       string                 `json:"output,omitempty"`
	Package      string                 `json:"package"`
	Version      string                 `json:"version"`
	Architecture string                 `json:"architecture"`
	Items        []ReportItem           `json:"items"`
	Changelog    []debmap.ChangelogNote `json:"changelog"`
	Lintian      []LintianTag           `json:"lintian,omitempty"`
}

func (r *Report) add(action, what, from, to, note string) {
	r.Items = append(r.Items, ReportItem{Action: action, What: what, From: from, To: to, Note: note})
}

// Count returns how many items have the action.
func (r *Report) Count(action string) int {
	n := 0
	for _, it := range r.Items {
		if it.Action == action {
			n++
		}
	}
	return n
}

// WriteText prints the report for a terminal, one item a line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s → %s %s %s", r.RPM, r.Package, r.Version, r.Architecture)
	if r.Output != "" {
		fmt.Fprintf(&b, " (%s)", r.Output)
	}
	b.WriteString("\n")
	for _, it := range r.Items {
		fmt.Fprintf(&b, "  %-12s %-12s %s", it.Action, it.What, it.From)
		if it.To != "" {
			fmt.Fprintf(&b, " → %s", it.To)
		}
		if it.Note != "" {
			fmt.Fprintf(&b, "  (%s)", it.Note)
		}
		b.WriteString("\n")
	}
	kept := 0
	for _, c := range r.Changelog {
		if c.Note == "" {
			kept++
		}
	}
	fmt.Fprintf(&b, "  changelog    %d entries written, %d with their own version\n", len(r.Changelog), kept)
	for _, c := range r.Changelog {
		if c.Note != "" {
			fmt.Fprintf(&b, "  changelog    entry %d: version %s (%s)\n", c.Entry+1, c.Version, c.Note)
		}
		if c.Author != "" {
			fmt.Fprintf(&b, "  changelog    entry %d: author %s (%s)\n", c.Entry+1, c.Author, c.AuthorNote)
		}
		if c.Shifted != 0 {
			fmt.Fprintf(&b, "  changelog    entry %d: time moved back %ds (not older than the entry above)\n", c.Entry+1, c.Shifted)
		}
	}
	for _, l := range r.Lintian {
		fmt.Fprintf(&b, "  lintian      %s: %s %s\n", l.Severity, l.Tag, l.Info)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
