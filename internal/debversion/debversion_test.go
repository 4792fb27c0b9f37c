package debversion

import (
	"os/exec"
	"testing"

	"pault.ag/go/debian/version"

	"github.com/ingotfleet/ingot/internal/testenv"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want version.Version
	}{
		{"1.0", version.Version{Version: "1.0"}},
		{"1.0-1", version.Version{Version: "1.0", Revision: "1"}},
		{"2:1.0-1+b1", version.Version{Epoch: 2, Version: "1.0", Revision: "1+b1"}},
		{"1:2.0-rc-3", version.Version{Epoch: 1, Version: "2.0-rc", Revision: "3"}},
		{"x:1.0", version.Version{Version: "1.0"}},
		{"1.0-", version.Version{Version: "1.0"}},
		{"", version.Version{}},
	} {
		if got := Split(tc.in); got != tc.want {
			t.Errorf("Split(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// TestCompareAgainstDpkg asks dpkg --compare-versions about every pair.
func TestCompareAgainstDpkg(t *testing.T) {
	dpkg := testenv.RequireTool(t, "dpkg", "dpkg")
	pairs := [][2]string{
		{"1.0", "1.0"}, {"1.0", "1.0-1"}, {"1.0~rc1", "1.0"}, {"1:0.1", "2.0"}, {"1.0a", "1.0"},
		{"1.0+deb12u1", "1.0"}, {"20250419~deb12u2", "20250419"}, {"3.0.20-1~deb12u2", "3.0.22-1~deb12u2"},
		{"1.0.9-2+b6", "1.0.9-2+deb12u1"}, {"2.6.1", "2.6.2"}, {"5.36.0-7+deb12u3", "5.36.0-7+deb12u4"},
		{"1.01", "1.1"}, {"1.001-1", "1.1-1"}, {"1.0~~", "1.0~"}, {"0:1.0", "1.0"}, {"1.2.10", "1.2.9"},
		{"2026b-0+deb12u1", "2026f-0+deb12u1"}, {"1.0-1.1", "1.0-1+b1"}, {"1.0+git3-2.el9.1", "1.0-2"},
		{"0beta-1", "0alpha-1"}, {"2.0A~", "2.0-1"}, {"1:1.0", "2.0"}, {"1.0-1~", "1.0-1"},
	}
	for _, p := range pairs {
		got := Compare(p[0], p[1])
		if back := Compare(p[1], p[0]); back != -got {
			t.Errorf("Compare(%q, %q) = %d but Compare(%q, %q) = %d", p[0], p[1], got, p[1], p[0], back)
		}
		for op, want := range map[string]bool{"lt": got < 0, "eq": got == 0, "gt": got > 0} {
			err := exec.Command(dpkg, "--compare-versions", p[0], op, p[1]).Run()
			if (err == nil) != want {
				t.Errorf("Compare(%q, %q) = %d, but dpkg --compare-versions %s says %v", p[0], p[1], got, op, err == nil)
			}
		}
	}
}

func FuzzCompare(f *testing.F) {
	f.Add("1.0-1", "1:1.0~rc1-2")
	f.Add("1.0+deb12u1", "1.0")
	f.Add("", "-")
	f.Fuzz(func(t *testing.T, a, b string) {
		c := Compare(a, b)
		if c < -1 || c > 1 {
			t.Fatalf("Compare(%q, %q) = %d, want -1, 0 or 1", a, b, c)
		}
		if Compare(b, a) != -c {
			t.Fatalf("Compare(%q, %q) is not antisymmetric", a, b)
		}
		if Compare(a, a) != 0 {
			t.Fatalf("Compare(%q, %q) != 0", a, a)
		}
	})
}
