package debmap

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/internal/debversion"
	"github.com/ingotfleet/ingot/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestDebVersion(t *testing.T) {
	for _, tc := range []struct {
		epoch    int64
		hasEpoch bool
		v, r     string
		want     string
	}{
		{0, false, "1.0", "1", "1.0-1"},
		{2, true, "1.0", "1", "2:1.0-1"},
		{0, true, "1.0", "1", "1.0-1"},
		{0, false, "1.0~rc1", "1", "1.0~rc1-1"},
		{0, false, "1.0^git3", "2.el9_1", "1.0+git3-2.el9.1"},
		{0, false, "1_2+3", "", "1.2.3"},
		{0, false, "beta", "1", "0beta-1"},
	} {
		got, _ := DebVersion(tc.epoch, tc.hasEpoch, tc.v, tc.r)
		if got != tc.want {
			t.Errorf("DebVersion(%d %v %q %q) = %q, want %q", tc.epoch, tc.hasEpoch, tc.v, tc.r, got, tc.want)
		}
	}
}

// TestVersionOrder checks that the mapped versions sort under dpkg as the
// originals sort under rpm, asking the real tools: rpm's own vercmp (its
// Lua API) and dpkg --compare-versions.
func TestVersionOrder(t *testing.T) {
	testenv.RequireTool(t, "rpm", "rpm")
	testenv.RequireTool(t, "dpkg", "dpkg")
	pairs := [][2]string{
		{"1.0", "1.0~rc1"}, {"1.0~rc1", "1.0~rc2"}, {"1.0^git1", "1.0"}, {"1.0^git1", "1.0.1"},
		{"1.0_1", "1.0.1"}, {"1.2", "1.10"}, {"1.0", "1.0.0"}, {"2.0~rc1", "2.0"},
		{"1.0^git1", "1.0^git2"}, {"1.0~rc1^git1", "1.0~rc1"}, {"1.0+1", "1.0.1"}, {"10", "9"},
		{"1.0.el9_2", "1.0.el9_10"},
	}
	var lua strings.Builder
	for _, p := range pairs {
		fmt.Fprintf(&lua, "print(tostring(rpm.vercmp(%q, %q)) .. \" \")\n", p[0], p[1])
	}
	out, err := exec.Command("rpm", "--eval", "%{lua:"+lua.String()+"}").CombinedOutput()
	if err != nil {
		t.Fatalf("rpm --eval: %v\n%s", err, out)
	}
	rpmRes := strings.Fields(string(out))
	if len(rpmRes) != len(pairs) {
		t.Fatalf("rpm printed %q", out)
	}
	for i, p := range pairs {
		a, _ := DebVersion(0, false, p[0], "")
		b, _ := DebVersion(0, false, p[1], "")
		var dpkg int
		switch {
		case exec.Command("dpkg", "--compare-versions", a, "lt", b).Run() == nil:
			dpkg = -1
		case exec.Command("dpkg", "--compare-versions", a, "eq", b).Run() == nil:
			dpkg = 0
		default:
			dpkg = 1
		}
		if fmt.Sprint(dpkg) != rpmRes[i] {
			t.Errorf("rpm orders %s vs %s as %s; dpkg orders %s vs %s as %d", p[0], p[1], rpmRes[i], a, b, dpkg)
		}
		if debversion.Compare(a, b) != dpkg {
			t.Errorf("debversion.Compare(%s, %s) = %d, dpkg says %d", a, b, debversion.Compare(a, b), dpkg)
		}
	}
}

func TestNamesArchSection(t *testing.T) {
	for in, want := range map[string]string{"Hello_World": "hello-world", "perl-Foo-Bar": "perl-foo-bar", "x": "x0", "_x": "0-x", "gtk+3.0": "gtk+3.0"} {
		if got := DebName(in); got != want {
			t.Errorf("DebName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"x86_64": "amd64", "i686": "i386", "noarch": "all", "aarch64": "arm64", "ppc64le": "ppc64el", "armv7hl": "armhf"} {
		if got, _ := DebArch(in); got != want {
			t.Errorf("DebArch(%q) = %q, want %q", in, got, want)
		}
	}
	if _, ok := DebArch("vax"); ok {
		t.Error("DebArch(vax) ok")
	}
	for in, want := range map[string]string{"System Environment/Daemons": "admin", "Development/Libraries": "libdevel", "Applications/Internet": "net", "Unspecified": "misc"} {
		if got, _ := DebSection(in); got != want {
			t.Errorf("DebSection(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestChangelogGolden checks WriteChangelog byte for byte (go test
// -update rewrites the golden file).
func TestChangelogGolden(t *testing.T) {
	entries := []ChangelogEntry{
		{Time: 1704110400, Name: "Jane Doe <jane@example.com> - 2:1.4-3", Text: "- Fixed it\n  on two lines\n\n- Another"},
		{Time: 1704110400, Name: "Jane Doe <jane@example.com> - 2:1.4-2", Text: "- Same day"},
		{Time: 1704024000, Name: "Bob <bob@example.org> 1.3-1", Text: "- Older"},
		{Time: 1703937600, Name: "No Email - 1.2-1", Text: "Plain text entry"},
		{Time: 1703851200, Name: "Weird <w@example.org> - not a version!", Text: "- x"},
		{Time: 1703764800, Name: "Newer <n@example.org> - 5.0-1", Text: ""},
	}
	got, notes := WriteChangelog(entries, ChangelogOptions{Package: "pkg", Version: "2:1.4-3", Epoch: 2, HasEpoch: true, Maintainer: "M <m@example.com>"})
	golden := filepath.Join("testdata", "changelog.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("changelog differs from %s:\n%s", golden, got)
	}
	var vers []string
	for _, n := range notes {
		vers = append(vers, n.Version)
	}
	if strings.Join(vers, " ") != "2:1.4-3 2:1.4-2 2:1.3-1 2:1.2-1 2:1.2-1~ 2:1.2-1~~" {
		t.Errorf("versions %v", vers)
	}
}

func TestDebContact(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		changed  bool
	}{
		{"", "", false},
		{"Jane Doe <jane@example.com>", "Jane Doe <jane@example.com>", false},
		{"  Jane   Doe  <jane@example.com> ", "Jane Doe <jane@example.com>", false},
		{"J. R. Doe <j@x.example.org>", "J. R. Doe <j@x.example.org>", false},
		{"CentOS BuildSystem <http://bugs.centos.org>", "CentOS BuildSystem <unknown@rpm2deb.invalid>", true},
		{"Red Hat, Inc. <http://bugzilla.redhat.com/bugzilla>", "Red Hat Inc. <unknown@rpm2deb.invalid>", true},
		{"Fedora Project", "Fedora Project <unknown@rpm2deb.invalid>", true},
		{"CentOS", "CentOS <unknown@rpm2deb.invalid>", true},
		{"jane@example.com", "jane <jane@example.com>", true},
		{"<jane@example.com>", "jane <jane@example.com>", true},
		{"Jane Doe jane@example.com", "Jane Doe <jane@example.com>", false},
		{"Foo [bar] <a@example.com>", "Foo bar <a@example.com>", true},
		{"Jane <jane@example.com> (on leave)", "Jane <jane@example.com>", true},
		{"Jane <jane@example.com", "Jane <jane@example.com>", false},
		{"Builder <builder@localhost>", "Builder <unknown@rpm2deb.invalid>", true},
		{"Builder <b@10.0.0.1>", "Builder <unknown@rpm2deb.invalid>", true},
		{"root <root@build.example.com>", "Unknown <unknown@rpm2deb.invalid>", true},
		{"Build Host <root@build.example.com>", "Build Host <unknown@rpm2deb.invalid>", true},
		{"\"\" <>", "Unknown <unknown@rpm2deb.invalid>", true},
		{"Über Entwickler <ue@example.de>", "Über Entwickler <ue@example.de>", false},
	} {
		got, note := DebContact(tc.in)
		if got != tc.want || (note != "") != tc.changed {
			t.Errorf("DebContact(%q) = %q, %q; want %q, changed %v", tc.in, got, note, tc.want, tc.changed)
		}
	}
}

// TestDebContactLintian checks DebContact's output with the modules
// lintian itself judges Maintainer fields with (malformed-contact,
// bogus-mail-host, no-phrase, root-in-contact).
func TestDebContactLintian(t *testing.T) {
	testenv.RequireTool(t, "lintian", "lintian")
	inputs := []string{
		"CentOS BuildSystem <http://bugs.centos.org>", "Red Hat, Inc. <http://bugzilla.redhat.com/bugzilla>",
		"Fedora Project", "a@b", "root", "root@example.com", "<>", "x <y> z", "Name (comment) <n@example.com>",
		"A;B:C@D <e@f.example>", `"Quoted, Name" <q@example.com>`, "Dev <dev@host_name.example.com>",
		"Ann <ann@example.com>, Bob <bob@example.com>", "@@@", "Jane <jane@example.com>",
	}
	var script strings.Builder
	script.WriteString(`use Email::Address::XS; use Data::Validate::Domain qw(is_domain);
while (my $c = <STDIN>) { chomp $c; my @p = Email::Address::XS->parse($c);
  my $ok = @p == 1 && $p[0]->is_valid && length($p[0]->phrase) && $p[0]->user ne 'root' && $p[0]->phrase ne 'root'
    && is_domain($p[0]->host, {domain_disable_tld_validation => 1});
  print(($ok ? "ok" : "BAD"), "\t$c\n"); }
`)
	var in strings.Builder
	for _, s := range inputs {
		got, _ := DebContact(s)
		in.WriteString(got + "\n")
	}
	cmd := exec.Command("perl", "-e", script.String())
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("perl (the Email::Address::XS and Data::Validate::Domain modules come with lintian: apt-get install lintian): %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(inputs) {
		t.Fatalf("perl judged %d contacts, gave it %d:\n%s", len(lines), len(inputs), out)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, "ok\t") {
			t.Errorf("DebContact(%q) = %q: lintian would call it malformed", inputs[i], strings.TrimPrefix(l, "BAD\t"))
		}
	}
}

func TestParseLicense(t *testing.T) {
	for _, tc := range []struct {
		tag  string
		want string // name=file, ...
	}{
		{"GPL", "GPL=GPL"},
		{"GPL+", "GPL+=GPL"},
		{"GPLv2", "GPLv2=GPL-2"},
		{"GPLv2+", "GPLv2+=GPL-2"},
		{"GPL-2.0-or-later", "GPL-2.0-or-later=GPL-2"},
		{"GPL-2.0-only", "GPL-2.0-only=GPL-2"},
		{"GPL-3.0+ WITH Classpath-exception-2.0", "GPL-3.0+=GPL-3, Classpath-exception-2.0="},
		{"GPLv3+ with exceptions", "GPLv3+=GPL-3, exceptions="},
		{"GPLv1", "GPLv1=GPL-1"},
		{"GPL+ or Artistic", "GPL+=GPL, Artistic=Artistic"},
		{"(GPL+ or Artistic) and BSD", "GPL+=GPL, Artistic=Artistic, BSD="},
		{"LGPLv2+ and MIT", "LGPLv2+=LGPL-2, MIT="},
		{"LGPLv2.1", "LGPLv2.1=LGPL-2.1"},
		{"LGPL-2.1-or-later AND GPL-2.0-only", "LGPL-2.1-or-later=LGPL-2.1, GPL-2.0-only=GPL-2"},
		{"LGPLv3", "LGPLv3=LGPL-3"},
		{"LGPL", "LGPL=LGPL"},
		{"ASL 2.0", "ASL 2.0=Apache-2.0"},
		{"Apache-2.0", "Apache-2.0=Apache-2.0"},
		{"Apache License 2.0", "Apache License 2.0=Apache-2.0"},
		{"Artistic 2.0", "Artistic 2.0="},
		{"MPLv1.1", "MPLv1.1=MPL-1.1"},
		{"MPL-2.0", "MPL-2.0=MPL-2.0"},
		{"MPLv2.0 or GPLv2+", "MPLv2.0=MPL-2.0, GPLv2+=GPL-2"},
		{"CC0", "CC0=CC0-1.0"},
		{"CC0-1.0", "CC0-1.0=CC0-1.0"},
		{"GFDL", "GFDL=GFDL"},
		{"GFDL-1.3-or-later", "GFDL-1.3-or-later=GFDL-1.3"},
		{"GFDL-1.1", "GFDL-1.1="},
		{"AGPLv3", "AGPLv3="},
		{"GPLv4", "GPLv4="},
		{"Public Domain", "Public Domain="},
		{"MIT/X11", "MIT=, X11="},
		{"GPL and GPL", "GPL=GPL"},
		{"", ""},
	} {
		var got []string
		for _, term := range ParseLicense(tc.tag) {
			got = append(got, term.Name+"="+term.Common)
		}
		if g := strings.Join(got, ", "); g != tc.want {
			t.Errorf("ParseLicense(%q) = %s, want %s", tc.tag, g, tc.want)
		}
	}
}

// TestCommonLicensesExist: every file the converter points at is in
// /usr/share/common-licenses (base-files, Essential).
func TestCommonLicensesExist(t *testing.T) {
	for _, l := range CommonLicenses {
		if _, err := os.Stat(filepath.Join("/usr/share/common-licenses", l)); err != nil {
			t.Errorf("%s: %v", l, err)
		}
	}
}

// TestChangelogContacts: a changelog author Debian would not accept gets
// a valid contact, and the entry's note says what changed.
func TestChangelogContacts(t *testing.T) {
	entries := []ChangelogEntry{
		{Time: 1704110400, Name: "Johnny Hughes <johnny at centos.org> - 1.0-2", Text: "- a"},
		{Time: 1704024000, Name: "root <root@localhost> - 1.0-1", Text: "- b"},
		{Time: 1703937600, Name: "No Email - 0.9-1", Text: "- c"},
		{Time: 1703851200, Name: "Jane Doe <jane@example.com> - 0.8-1", Text: "- d"},
	}
	text, notes := WriteChangelog(entries, ChangelogOptions{Package: "p", Version: "1.0-2", Maintainer: "M <m@example.com>"})
	want := []struct{ trailer, author string }{
		{" -- Johnny Hughes <unknown@rpm2deb.invalid>  ", "Johnny Hughes <unknown@rpm2deb.invalid>"},
		{" -- Unknown <unknown@rpm2deb.invalid>  ", "Unknown <unknown@rpm2deb.invalid>"},
		{" -- No Email <m@example.com>  ", "No Email <m@example.com>"},
		{" -- Jane Doe <jane@example.com>  ", ""},
	}
	var trailers []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, " -- ") {
			trailers = append(trailers, l)
		}
	}
	if len(trailers) != len(want) || len(notes) != len(want) {
		t.Fatalf("%d trailers, %d notes; want %d:\n%s", len(trailers), len(notes), len(want), text)
	}
	for i, w := range want {
		if !strings.HasPrefix(trailers[i], w.trailer) {
			t.Errorf("entry %d: %q, want %q…", i+1, trailers[i], w.trailer)
		}
		if notes[i].Author != w.author || (notes[i].AuthorNote != "") != (w.author != "") {
			t.Errorf("entry %d: note author %q (%q), want %q", i+1, notes[i].Author, notes[i].AuthorNote, w.author)
		}
	}
}
