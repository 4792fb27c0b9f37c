package pkgbuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/internal/testenv"
)

// makeDeb builds a .deb with dpkg-deb from files (path -> content).
func makeDeb(t *testing.T, version string, mtime int64, files map[string]string) Output {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	ctl := "Package: demo\nVersion: " + version + "\nArchitecture: all\nMaintainer: t <t@t.invalid>\nSource: demo (" + version + ")\nDescription: demo\n"
	files["DEBIAN/control"] = ctl
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("dpkg-deb", "--root-owner-group", "--build", root, filepath.Join(dir, "demo.deb"))
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(mtime, 10))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, out)
	}
	o, err := describe(filepath.Join(dir, "demo.deb"))
	if err != nil {
		t.Fatal(err)
	}
	o.Name = "demo.deb"
	return o
}

func TestSameContentAndCompare(t *testing.T) {
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	files := func(bin string) map[string]string {
		return map[string]string{"usr/bin/demo": bin, "usr/share/doc/demo/changelog.Debian.gz": "log of " + bin}
	}
	old := makeDeb(t, "1.0", 1_600_000_000, files("v1"))
	rebuilt := makeDeb(t, "1.0+b1", 1_700_000_000, map[string]string{"usr/bin/demo": "v1", "usr/share/doc/demo/changelog.Debian.gz": "another log"})
	changed := makeDeb(t, "1.1", 1_700_000_000, files("v2"))
	if same, why, err := SameContent(old.Path, rebuilt.Path); err != nil || !same {
		t.Errorf("rebuild with a new version, time and changelog: same = %v (%s), %v; want same", same, why, err)
	}
	if same, why, err := SameContent(old.Path, changed.Path); err != nil || same || !strings.Contains(why, "usr/bin/demo") {
		t.Errorf("changed binary: same = %v (%q), %v; want a difference naming usr/bin/demo", same, why, err)
	}

	// Compare: a build path in the second build's file is named as the cause.
	a := makeDeb(t, "1.0", 1_600_000_000, map[string]string{"usr/share/demo/info": "built in /build/demo-1.0\n"})
	b := makeDeb(t, "1.0", 1_600_000_000, map[string]string{"usr/share/demo/info": "built in " + Varied.BuildDir + "/demo-1.0\n"})
	d, err := Compare([]Output{a}, []Output{b}, Varied)
	if err != nil {
		t.Fatal(err)
	}
	if d == nil || d.Path != "data.tar/usr/share/demo/info" || !strings.HasPrefix(d.Cause, "build path") {
		t.Errorf("Compare = %v, want usr/share/demo/info with the build path as cause", d)
	}
	if d, err := Compare([]Output{a}, []Output{a}, Varied); err != nil || d != nil {
		t.Errorf("Compare of a package with itself = %v, %v", d, err)
	}
	c := makeDeb(t, "1.0", 1_600_000_001, map[string]string{"usr/share/demo/info": "built in /build/demo-1.0\n"})
	if d, err := Compare([]Output{a}, []Output{c}, Varied); err != nil || d == nil || d.What != "mtime" {
		t.Errorf("Compare with another mtime = %v, %v; want mtime", d, err)
	}
}
