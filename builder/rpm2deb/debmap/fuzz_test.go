package debmap

import (
	"strings"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/internal/debversion"
)

// FuzzChangelog writes a changelog from arbitrary entry names and texts:
// every entry must come out as exactly one Debian entry with one trailer
// line, versions strictly decreasing.
func FuzzChangelog(f *testing.F) {
	f.Add("Jane Doe <jane@example.com> - 1:2.0-3", "- fixed\n  more", "Bob <b@example.org> 1.0-1", "- old", int64(1704110400))
	f.Add("nobody", "", "x <y> - !!", "\x00\n\n", int64(-1))
	f.Fuzz(func(t *testing.T, name1, text1, name2, text2 string, when int64) {
		entries := []ChangelogEntry{{Time: when, Name: name1, Text: text1}, {Time: when - 86400, Name: name2, Text: text2}}
		out, notes := WriteChangelog(entries, ChangelogOptions{Package: "pkg", Version: "2:1.0-1", Epoch: 2, HasEpoch: true})
		if got := strings.Count(out, "\n -- "); got != len(entries) {
			t.Fatalf("%d trailer lines for %d entries:\n%s", got, len(entries), out)
		}
		heads := 0
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "pkg (") {
				heads++
			}
		}
		if heads != len(entries) {
			t.Fatalf("%d entry headers for %d entries:\n%s", heads, len(entries), out)
		}
		var dates []string
		for _, line := range strings.Split(out, "\n") {
			if d, ok := strings.CutPrefix(line, " -- "); ok {
				dates = append(dates, d[strings.LastIndex(d, ">  ")+3:])
			}
		}
		if len(dates) == 2 {
			t0, err0 := time.Parse(time.RFC1123Z, dates[0])
			t1, err1 := time.Parse(time.RFC1123Z, dates[1])
			if err0 == nil && err1 == nil && !t1.Before(t0) {
				t.Fatalf("dates not decreasing: %s, %s", dates[0], dates[1])
			}
		}
		for i := 1; i < len(notes); i++ {
			if debversion.Compare(notes[i].Version, notes[i-1].Version) >= 0 {
				t.Fatalf("version %s not lower than %s", notes[i].Version, notes[i-1].Version)
			}
		}
	})
}

// FuzzDebContact: whatever an RPM's Packager, Vendor or changelog author
// holds, DebContact gives one "Name <user@host>" that it leaves alone
// when given it again, and ParseLicense only names common-licenses files.
func FuzzDebContact(f *testing.F) {
	for _, s := range []string{"CentOS BuildSystem <http://bugs.centos.org>", "Red Hat, Inc.", "a@b.c", "root", "<>", "GPLv2+ and (LGPL or BSD)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, _ := DebContact(s)
		if c == "" {
			if strings.TrimSpace(SanitizeLine(s)) != "" {
				t.Fatalf("DebContact(%q) = \"\"", s)
			}
		} else {
			name, rest, ok := strings.Cut(c, " <")
			addr, _ := strings.CutSuffix(rest, ">")
			if !ok || name == "" || cleanPhrase(name) != name || !validAddress(addr) || strings.EqualFold(name, "root") {
				t.Fatalf("DebContact(%q) = %q", s, c)
			}
			if again, note := DebContact(c); again != c || note != "" {
				t.Fatalf("DebContact(%q) = %q, then %q (%s)", s, c, again, note)
			}
		}
		for _, l := range ParseLicense(s) {
			if l.Common != "" && known(l.Common) == "" {
				t.Fatalf("ParseLicense(%q) names %q", s, l.Common)
			}
		}
	})
}
