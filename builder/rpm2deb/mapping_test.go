package rpm2deb

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/rpm"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// TestVersionedRelations checks the operator mapping, and that the range
// for "= V" (no release) holds every V-R and nothing else, asking dpkg.
func TestVersionedRelations(t *testing.T) {
	testenv.RequireTool(t, "dpkg", "dpkg")
	for _, tc := range []struct {
		flags uint32
		ver   string
		want  string
	}{
		{rpm.SenseLess, "2.0-1", "p (<< 2.0-1)"},
		{rpm.SenseGreater, "2.0-1", "p (>> 2.0-1)"},
		{rpm.SenseEqual, "2.0-1", "p (= 2.0-1)"},
		{rpm.SenseLess | rpm.SenseEqual, "1:2.0-1", "p (<= 1:2.0-1)"},
		{rpm.SenseGreater | rpm.SenseEqual, "2.0", "p (>= 2.0)"},
		{rpm.SenseEqual, "2.0", "p (>= 2.0), p (<< 2.0A~)"},
		{rpm.SenseLess | rpm.SenseEqual, "2.0", "p (<< 2.0A~)"},
		{rpm.SenseGreater, "2.0", "p (>> 2.0A~)"},
		{rpm.SenseLess, "2.0", "p (<< 2.0)"},
		{0, "", "p"},
	} {
		rs, _ := mapVersioned("p", Dep{Name: "P", Flags: tc.flags, Version: tc.ver})
		if got := strings.Join(relStrings(rs), ", "); got != tc.want {
			t.Errorf("%s %s → %q, want %q", rpmOp(tc.flags), tc.ver, got, tc.want)
		}
	}
	sat := func(v, op, w string) bool { return exec.Command("dpkg", "--compare-versions", v, op, w).Run() == nil }
	in := []string{"2.0", "2.0-1", "2.0-0", "2.0-999.el9", "2.0-1~bpo1", "2.0-zz"}
	out := []string{"2.0~rc1-1", "2.0.1-1", "2.0a-1", "2.0A-1", "2.0+1-1", "2.00.1", "1.9-1", "2.1"}
	for _, v := range in {
		if !sat(v, "ge", "2.0") || !sat(v, "lt", "2.0"+afterRelease) {
			t.Errorf("%s should satisfy = 2.0", v)
		}
	}
	for _, v := range out {
		if sat(v, "ge", "2.0") && sat(v, "lt", "2.0"+afterRelease) {
			t.Errorf("%s should not satisfy = 2.0", v)
		}
	}
}

func TestShortenSymlink(t *testing.T) {
	for _, tc := range []struct{ link, target, want string }{
		{"usr/lib/.build-id/c8/abc", "../../../../usr/bin/hello", "../../../bin/hello"},
		{"usr/bin/hi", "hello", ""},
		{"usr/bin/hi", "/usr/bin/hello", ""},
		{"usr/libexec/x/y", "../../bin/z", ""},
		{"a/b", "../a/c", "c"},
	} {
		got, ok := shortenSymlink(tc.link, tc.target)
		if !ok {
			got = ""
		}
		if got != tc.want {
			t.Errorf("shortenSymlink(%q, %q) = %q, want %q", tc.link, tc.target, got, tc.want)
		}
	}
}

func TestRichDependencies(t *testing.T) {
	c := &converter{}
	for in, want := range map[string]string{
		"(foo or bar >= 2.0-1)":      "foo | bar (>= 2.0-1)",
		"(foo and bar < 3)":          "foo, bar (<< 3)",
		"(Foo_Bar or baz)":           "foo-bar | baz",
		"(foo if bar)":               "",
		"((a or b) and c)":           "",
		"(foo or bar = 2.0)":         "",
		"(foo or /usr/bin/x)":        "",
		"(foo or bar and baz)":       "",
		"(foo >= 1 or bar with baz)": "",
		"(foo or)":                   "",
	} {
		got, _ := c.mapRich(Dep{Name: in})
		if strings.Join(got, ", ") != want {
			t.Errorf("mapRich(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNothingBelowASymlink: a package path below a symlink of the same
// package is refused (unpacked, it would land where the symlink points).
func TestNothingBelowASymlink(t *testing.T) {
	c := &converter{name: "x.rpm", byPath: map[string]*debFile{}}
	if err := c.add(&debFile{Path: "srv/x", Type: images.TypeSymlink, Link: "/etc"}); err != nil {
		t.Fatal(err)
	}
	err := c.add(&debFile{Path: "srv/x/passwd", Type: images.TypeFile})
	if !errors.Is(err, images.ErrUnsafePath) {
		t.Errorf("file below a symlink: %v", err)
	}
	if err := c.add(&debFile{Path: "srv/y/z", Type: images.TypeFile}); err != nil {
		t.Errorf("file below a synthesized directory: %v", err)
	}
}
