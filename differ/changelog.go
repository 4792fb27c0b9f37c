package differ

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/ingotfleet/ingot/internal/debversion"
)

// ChangelogEntry is one entry of a Debian changelog (deb-changelog(5)).
type ChangelogEntry struct {
	Package       string `json:"package"`
	Version       string `json:"version"`
	Distributions string `json:"distributions"`
	Metadata      string `json:"metadata"` // "urgency=medium", …
	Changes       string `json:"changes"`  // the body lines, as written, blank lines at either end trimmed
	Maintainer    string `json:"maintainer"`
	Date          string `json:"date"`
}

// Text is the entry as it appears in the changelog.
func (e ChangelogEntry) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s) %s; %s\n\n", e.Package, e.Version, e.Distributions, e.Metadata)
	if e.Changes != "" {
		b.WriteString(e.Changes)
		b.WriteString("\n\n")
	}
	fmt.Fprintf(&b, " -- %s  %s\n", e.Maintainer, e.Date)
	return b.String()
}

var (
	changelogHeader  = regexp.MustCompile(`^([A-Za-z0-9][-+.A-Za-z0-9]*) \(([^() \t]+)\)((?:\s+[-+.A-Za-z0-9/]+)+)\s*;\s*(.*?)\s*$`)
	changelogTrailer = regexp.MustCompile(`^ -- (.*>)  ?(\S.*?)\s*$`)
)

// maxChangelogLine bounds one changelog line.
const maxChangelogLine = 1 << 20

// ParseChangelog reads a Debian changelog, newest entry first. It stops,
// without error, at the first line between entries that is not an entry
// header (editor settings and "Old Changelog:" sections end many
// changelogs). Anything else malformed is an error naming name and the line.
func ParseChangelog(name string, data []byte) ([]ChangelogEntry, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxChangelogLine)
	var entries []ChangelogEntry
	var cur *ChangelogEntry
	var body []string
	n := 0
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s line %d: %s", name, n, fmt.Sprintf(format, a...))
	}
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if cur == nil {
			if strings.TrimSpace(line) == "" {
				continue
			}
			m := changelogHeader.FindStringSubmatch(line)
			if m == nil {
				if len(entries) == 0 {
					return nil, bad("want an entry header \"package (version) distribution; urgency=…\", got %q", clip(line))
				}
				return entries, nil
			}
			if _, err := debversion.Parse(m[2]); err != nil {
				return nil, bad("%v", err)
			}
			cur = &ChangelogEntry{Package: m[1], Version: m[2], Distributions: strings.TrimSpace(m[3]), Metadata: m[4]}
			body = body[:0]
			continue
		}
		if strings.HasPrefix(line, " -- ") {
			m := changelogTrailer.FindStringSubmatch(line)
			if m == nil {
				return nil, bad("malformed trailer %q: want \" -- Name <email>  date\"", clip(line))
			}
			cur.Maintainer, cur.Date = m[1], m[2]
			cur.Changes = trimBlankLines(body)
			entries = append(entries, *cur)
			cur = nil
			continue
		}
		if line != "" && line[0] != ' ' && line[0] != '\t' {
			if changelogHeader.MatchString(line) {
				return nil, bad("entry %s (%s) has no trailer line before the next entry", cur.Package, cur.Version)
			}
			return nil, bad("change lines must be indented, got %q", clip(line))
		}
		body = append(body, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s line %d: %w", name, n+1, err)
	}
	if cur != nil {
		return nil, fmt.Errorf("%s: entry %s (%s) ends without a trailer line", name, cur.Package, cur.Version)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s: no changelog entries", name)
	}
	return entries, nil
}

func trimBlankLines(lines []string) string {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n")
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// EntriesBetween returns what an upgrade from old to new brings: the
// entries from the one of version new (or the top, if none is) down to,
// not including, the first entry no newer than old — the changelog's own
// order, as dpkg-parsechangelog --since reads it (a backport's history may
// hold versions that sort above its own). With old empty it returns the
// entry of version new alone.
func EntriesBetween(entries []ChangelogEntry, old, new string) []ChangelogEntry {
	start := 0
	for i, e := range entries {
		if e.Version == new {
			start = i
			break
		}
	}
	if old == "" {
		if len(entries) > start && entries[start].Version == new {
			return entries[start : start+1]
		}
		return nil
	}
	var out []ChangelogEntry
	for _, e := range entries[start:] {
		if debversion.CompareStrict(e.Version, old) <= 0 {
			break
		}
		out = append(out, e)
	}
	return out
}
