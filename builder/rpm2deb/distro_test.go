package rpm2deb

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/builder/rpm2deb/debmap"
	"github.com/ingotfleet/ingot/internal/debversion"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// TestConvertDistributionRPMs converts the release RPMs CentOS and EPEL
// built (testdata/distro, 2004–2015): every .deb must have no lintian
// error, keep every changelog entry rpm prints (dates, authors, text), and
// come out byte for byte the same when converted again.
func TestConvertDistributionRPMs(t *testing.T) {
	testenv.RequireTool(t, "lintian", "lintian")
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	testenv.RequireTool(t, "dpkg-parsechangelog", "dpkg-dev")
	testenv.RequireTool(t, "rpm", "rpm")
	rpms, err := filepath.Glob(filepath.Join("testdata", "distro", "*.rpm"))
	if err != nil || len(rpms) < 10 {
		t.Fatalf("testdata/distro: want the 10 distribution RPMs, found %v (%v)", rpms, err)
	}
	ctx := context.Background()
	out1, out2 := t.TempDir(), t.TempDir()
	reports := map[string]*Report{} // by .deb base name
	var debs []string
	for _, in := range rpms {
		rep, err := Convert(ctx, in, Options{OutDir: out1})
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		base := filepath.Base(rep.Output)
		if _, dup := reports[base]; dup {
			t.Fatalf("two RPMs convert to %s", base)
		}
		reports[base] = rep
		debs = append(debs, rep.Output)

		rep2, err := Convert(ctx, in, Options{OutDir: out2})
		if err != nil {
			t.Fatalf("%s, second time: %v", in, err)
		}
		if !sameFile(t, rep.Output, rep2.Output) {
			t.Errorf("%s: converting twice gave different bytes", in)
		}
		t.Run(filepath.Base(in), func(t *testing.T) {
			// These versions have nothing dpkg reads differently: the
			// epoch and release come through as rpm prints them.
			evr := run(t, "rpm", "-qp", "--nosignature", "--qf", `%|EPOCH?{%{EPOCH}:}|%{VERSION}-%{RELEASE}`, in)
			if v := strings.TrimSpace(run(t, "dpkg-deb", "--field", rep.Output, "Version")); v != evr {
				t.Errorf("Version %s, rpm says %s", v, evr)
			}
			compareChangelogs(t, in, rep)
			checkPolicyChanges(t, in, rep)
		})
	}

	// One lintian run for all of them (it takes seconds to start).
	tags := lintianEach(t, debs)
	errs := 0
	for _, deb := range debs {
		base := filepath.Base(deb)
		rep := reports[base]
		rep.Lintian = tags[base]
		var text bytes.Buffer
		if err := rep.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s", text.String())
		for _, tag := range tags[base] {
			if tag.Severity == "E" {
				errs++
				t.Errorf("%s: lintian error: %s %s", base, tag.Tag, tag.Info)
			}
		}
	}
	t.Logf("lintian errors on the %d distribution RPMs: %d", len(debs), errs)
}

// lintianEach runs lintian once on every .deb and returns its tags by
// the .deb's base name (from its JSON output, which names the file of
// each tag; the text output does not tell apart packages of one name).
func lintianEach(t *testing.T, debs []string) map[string][]LintianTag {
	t.Helper()
	args := append([]string{"--allow-root", "--no-tag-display-limit", "--display-info", "--exp-output", "format=json", "--"}, debs...)
	cmd := exec.Command("lintian", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run() // non-zero when it found errors
	var doc struct {
		Groups []struct {
			InputFiles []struct {
				Path  string `json:"path"`
				Hints []struct {
					Tag        string `json:"tag"`
					Note       string `json:"note"`
					Visibility string `json:"visibility"`
					Pointer    *struct {
						Item struct {
							Name string `json:"name"`
						} `json:"item"`
					} `json:"pointer"`
				} `json:"hints"`
			} `json:"input_files"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("lintian: %v (exit: %v): %s\n%s", err, runErr, err, errb.String())
	}
	sev := map[string]string{"error": "E", "warning": "W", "info": "I", "pedantic": "P", "experimental": "X", "overridden": "O", "classification": "C"}
	res := map[string][]LintianTag{}
	seen := 0
	for _, g := range doc.Groups {
		for _, f := range g.InputFiles {
			seen++
			base := filepath.Base(f.Path)
			res[base] = []LintianTag{} // checked, even if clean
			for _, h := range f.Hints {
				info := h.Note
				if h.Pointer != nil && h.Pointer.Item.Name != "" {
					info = strings.TrimSpace(info + " [" + h.Pointer.Item.Name + "]")
				}
				s := sev[h.Visibility]
				if s == "" {
					s = h.Visibility
				}
				res[base] = append(res[base], LintianTag{Severity: s, Tag: h.Tag, Info: info})
			}
		}
	}
	if seen != len(debs) {
		t.Fatalf("lintian reported on %d files, gave it %d (exit: %v)\n%s", seen, len(debs), runErr, errb.String())
	}
	return res
}

// rpmEntry is one entry of `rpm -q --changelog -p`.
type rpmEntry struct {
	day, author, email string
	words              []string // the text, without "-" bullets
}

var rpmEntryHeader = regexp.MustCompile(`^\* ((?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-9]\d \d{4}) (.*)$`)

// parseRPMChangelog splits what `rpm -q --changelog` prints into entries.
func parseRPMChangelog(out string) []rpmEntry {
	var es []rpmEntry
	for _, line := range strings.Split(out, "\n") {
		if m := rpmEntryHeader.FindStringSubmatch(line); m != nil {
			author, email, _ := debmap.ParseChangelogName(m[2])
			es = append(es, rpmEntry{day: m[1], author: author, email: email})
			continue
		}
		if len(es) == 0 {
			continue
		}
		e := &es[len(es)-1]
		l := strings.TrimSpace(line)
		if l == "-" {
			continue
		}
		if strings.HasPrefix(l, "- ") || strings.HasPrefix(l, "* ") {
			l = l[2:] // the bullet, which the .deb writes as "*"
		}
		e.words = append(e.words, strings.Fields(l)...)
	}
	return es
}

// compareChangelogs checks the .deb's changelog entry by entry against
// `rpm -q --changelog -p`: as many entries, in the same order, each with
// the RPM's day, author, address and every word of its text; versions
// strictly decreasing.
func compareChangelogs(t *testing.T, rpmPath string, rep *Report) {
	t.Helper()
	want := parseRPMChangelog(run(t, "rpm", "-q", "--changelog", "--nosignature", "-p", rpmPath))
	// rpm prints entries without a blank line between them only when a
	// text ends oddly; count them independently to be sure of the split.
	times := strings.Fields(run(t, "rpm", "-qp", "--nosignature", "--qf", `[%{CHANGELOGTIME}\n]`, rpmPath))
	if len(want) != len(times) {
		t.Fatalf("parsed %d entries from rpm --changelog, the header has %d", len(want), len(times))
	}
	cl := filepath.Join(t.TempDir(), "changelog")
	cmd := exec.Command("sh", "-c", `dpkg-deb --fsys-tarfile "$1" | tar -xO "./usr/share/doc/$2/changelog.Debian.gz" | gzip -dc > "$3"`, "sh", rep.Output, rep.Package, cl)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("extracting the changelog: %v\n%s", err, out)
	}
	got := parseDebChangelog(run(t, "dpkg-parsechangelog", "-l", cl, "--all", "--format", "rfc822"))
	if len(want) == 0 {
		// The converter writes one entry saying there was none.
		if len(got) != 1 {
			t.Fatalf("the RPM has no changelog; the .deb has %d entries, want 1", len(got))
		}
		return
	}
	if len(got) != len(want) || len(rep.Changelog) != len(want) {
		t.Fatalf("the .deb's changelog has %d entries, the report %d, rpm --changelog %d", len(got), len(rep.Changelog), len(want))
	}
	for i, w := range want {
		g := got[i]
		if i > 0 && debversion.Compare(g.version, got[i-1].version) >= 0 {
			t.Errorf("entry %d: version %s not lower than %s above it", i+1, g.version, got[i-1].version)
		}
		day, err := time.Parse("Mon Jan _2 2006", w.day)
		if err != nil {
			t.Fatalf("entry %d: %v", i+1, err)
		}
		if g.date.UTC().Format("2006-01-02") != day.Format("2006-01-02") {
			t.Errorf("entry %d: date %s, rpm says %s", i+1, g.date, w.day)
		}
		switch n := rep.Changelog[i]; {
		case n.Author != "":
			// Changed to be valid for Debian: the report says so.
			if g.maintainer != n.Author || n.AuthorNote == "" {
				t.Errorf("entry %d: maintainer %q, report says %q (%s)", i+1, g.maintainer, n.Author, n.AuthorNote)
			}
		case g.maintainer != w.author+" <"+w.email+">":
			t.Errorf("entry %d: maintainer %q, rpm says %q <%s>", i+1, g.maintainer, w.author, w.email)
		}
		if strings.Join(g.words, " ") != strings.Join(w.words, " ") {
			t.Errorf("entry %d: text\n%q\nrpm says\n%q", i+1, strings.Join(g.words, " "), strings.Join(w.words, " "))
		}
	}
}

type debChangelogEntry struct {
	version, maintainer string
	date                time.Time
	words               []string
}

// parseDebChangelog reads dpkg-parsechangelog --format rfc822 output:
// one paragraph per entry; the words of Changes without the entry's
// title line, its "*" bullets and the line the converter adds for
// entries that did not keep their own version.
func parseDebChangelog(out string) []debChangelogEntry {
	var es []debChangelogEntry
	for _, para := range strings.Split(strings.TrimSpace(out), "\n\n") {
		var e debChangelogEntry
		inChanges := false
		title := true
		for _, line := range strings.Split(para, "\n") {
			if strings.HasPrefix(line, " ") && inChanges {
				l := strings.TrimSpace(line)
				switch {
				case title:
					title = false // "pkg (version) unstable; urgency=medium"
					continue
				case l == "." || l == "*":
					continue
				case strings.HasPrefix(l, "* RPM changelog line: "):
					continue
				}
				l = strings.TrimPrefix(l, "* ")
				e.words = append(e.words, strings.Fields(l)...)
				continue
			}
			inChanges = false
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "Version":
				e.version = v
			case "Maintainer":
				e.maintainer = v
			case "Date":
				e.date, _ = time.Parse(time.RFC1123Z, v)
			case "Changes:", "Changes":
				inChanges = true
			}
		}
		es = append(es, e)
	}
	return es
}

// checkPolicyChanges: every regular file under /etc is a conffile, and
// the report says which were %config in the RPM and which were added;
// no Python bytecode is left, and the report names each file dropped.
func checkPolicyChanges(t *testing.T, rpmPath string, rep *Report) {
	t.Helper()
	contents := parseContents(t, run(t, "dpkg-deb", "--contents", rep.Output))
	conffiles := map[string]bool{}
	cmd := exec.Command("sh", "-c", `dpkg-deb --ctrl-tarfile "$1" | tar -xO ./conffiles 2>/dev/null || true`, "sh", rep.Output)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Fields(string(out)) {
		conffiles[l] = true
	}
	config := map[string]bool{}
	for _, l := range strings.Fields(run(t, "rpm", "-qp", "--nosignature", "--configfiles", rpmPath)) {
		config[l] = true
	}
	items := map[string]ReportItem{}
	for _, it := range rep.Items {
		items[it.What+" "+it.From] = it
	}
	for p, e := range contents {
		if strings.HasPrefix(p, "/etc/") && (e.perms[0] == '-' || e.perms[0] == 'h') && !conffiles[p] {
			t.Errorf("%s is a file under /etc but not a conffile", p)
		}
		if strings.HasSuffix(p, ".pyc") || strings.HasSuffix(p, ".pyo") || strings.Contains(p+"/", "/__pycache__/") {
			t.Errorf("%s: Python bytecode left in the .deb", p)
		}
	}
	for p := range conffiles {
		if e, ok := contents[p]; !ok || !strings.HasPrefix(p, "/etc/") || e.perms[0] != '-' {
			t.Errorf("conffile %s is not a regular file under /etc in the .deb", p)
		}
		if config[p] {
			if it, ok := items["%config "+p]; !ok || it.To != "conffile" {
				t.Errorf("conffile %s, %%config in the RPM: report says %+v", p, it)
			}
		} else if it, ok := items["conffile "+p]; !ok || !strings.HasPrefix(it.Note, "added") {
			t.Errorf("conffile %s, not %%config in the RPM: report says %+v", p, it)
		}
	}
	for _, p := range strings.Fields(run(t, "rpm", "-qlp", "--nosignature", rpmPath)) {
		if strings.HasSuffix(p, ".pyc") || strings.HasSuffix(p, ".pyo") {
			if it := items["bytecode "+p]; it.Action != Dropped {
				t.Errorf("%s: the report does not say it was dropped", p)
			}
		}
	}
}
