package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/rpm2deb"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// buildTestRPM builds one of builder/rpm2deb's test specs.
func buildTestRPM(t *testing.T, spec string) string {
	t.Helper()
	testenv.RequireTool(t, "rpmbuild", "rpm")
	top := t.TempDir()
	specPath, _ := filepath.Abs(filepath.Join("..", "..", "builder", "rpm2deb", "testdata", "specs", spec+".spec"))
	cmd := exec.Command("rpmbuild", "-bb", "--quiet", "--define", "_topdir "+top, specPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	m, _ := filepath.Glob(filepath.Join(top, "RPMS", "*", "*.rpm"))
	if len(m) != 1 {
		t.Fatalf("rpmbuild %s: %v", spec, m)
	}
	return m[0]
}

// TestConvertTargetImage: `ingot convert rpm2deb --target name:tag`
// resolves file and soname dependencies against an image in the store,
// exactly as --target-root does against the same tree on disk.
func TestConvertTargetImage(t *testing.T) {
	ctx := context.Background()
	root := testenv.DebianRootDir(t)
	storeDir := t.TempDir()
	st, err := store.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	// The image: the reference root's dpkg database and top-level
	// entries (merged /usr's symlinks), which is all the resolver reads.
	keep := func(p string) bool {
		return !strings.Contains(p, "/") || p == "var/lib" || p == "var/lib/dpkg" || strings.HasPrefix(p, "var/lib/dpkg/")
	}
	m, err := images.WalkDir(ctx, root, images.WalkOptions{Exclude: func(p string) bool { return !keep(p) }}, func(e *images.Entry, content io.Reader) error {
		_, _, err := st.PutFile(ctx, content)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := st.PutManifest(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetRef(ctx, "debian:rpm2deb-test", d); err != nil {
		t.Fatal(err)
	}
	st.Close()

	in := buildTestRPM(t, "hello")
	env := map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}
	var depends []string
	for _, target := range [][]string{{"--target", "debian:rpm2deb-test"}, {"--target", d.String()[:12]}, {"--target-root", root}} {
		out := t.TempDir()
		args := append([]string{"--store", storeDir, "convert", "rpm2deb", "--json", "-o", out, in}, target...)
		code, stdout, stderr := runApp(t, env, args...)
		if code != cli.ExitOK {
			t.Fatalf("%v: exit %d\n%s", args, code, stderr)
		}
		var reps []rpm2deb.Report
		if err := json.Unmarshal([]byte(stdout), &reps); err != nil {
			t.Fatalf("--json output: %v\n%s", err, stdout)
		}
		if len(reps) != 1 || reps[0].Count(rpm2deb.Unresolved) != 0 {
			t.Fatalf("%v: unresolved dependencies in %+v", target, reps)
		}
		ctl, err := exec.Command("dpkg-deb", "--field", reps[0].Output, "Depends").Output()
		if err != nil {
			t.Fatal(err)
		}
		depends = append(depends, strings.TrimSpace(string(ctl)))
	}
	want := "bash (>= 5.0), coreutils (>> 8A~), libc6 (>= 2.34), libcap2-bin"
	for i, dep := range depends {
		if dep != want {
			t.Errorf("target %d: Depends %q, want %q", i, dep, want)
		}
	}
}

// TestConvertCommandErrors: bad input is exit 2 with no output file;
// --strict refusals too; flag mistakes are usage errors.
func TestConvertCommandErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.rpm")
	if err := os.WriteFile(bad, []byte("\xed\xab\xee\xdbshort"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, _, stderr := runApp(t, nil, "convert", "rpm2deb", "-o", out, bad)
	if code != cli.ExitError || !strings.Contains(stderr, bad) {
		t.Errorf("bad RPM: exit %d, stderr %q", code, stderr)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("bad RPM left %v", ents)
	}
	doc := buildTestRPM(t, "hello-doc")
	code, _, stderr = runApp(t, nil, "convert", "rpm2deb", "--strict", "-o", out, doc)
	if code != cli.ExitError || !strings.Contains(stderr, "%pretrans") {
		t.Errorf("--strict: exit %d, stderr %q", code, stderr)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("--strict left %v", ents)
	}
	for _, args := range [][]string{
		{"convert", "rpm2deb"},
		{"convert", "rpm2deb", "--compress", "bzip9", doc},
		{"convert", "rpm2deb", "--target", "x:y", "--target-root", "/", doc},
	} {
		if code, _, stderr := runApp(t, nil, args...); code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, cli.ExitUsage, stderr)
		}
	}
	// Several inputs: the bad one is refused, the good one converted.
	code, _, stderr = runApp(t, nil, "convert", "rpm2deb", "-o", out, bad, doc)
	if ents, _ := os.ReadDir(out); code != cli.ExitError || len(ents) != 1 || !strings.Contains(stderr, "1 of 2 RPMs not converted") {
		t.Errorf("bad and good RPM: exit %d, output %v, stderr %q", code, ents, stderr)
	}
	code, stdout, stderr := runApp(t, map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}, "convert", "rpm2deb", "-o", out, doc)
	if code != cli.ExitOK || !strings.Contains(stdout, "unsupported  %pretrans") {
		t.Errorf("convert: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestConvertPolicyReport: what the converter changes for Debian policy
// in a distribution's RPM (conffiles added under /etc, bytecode dropped,
// the Maintainer and the repeated synopsis fixed, the licence pointer)
// is in the --json report and in the text one.
func TestConvertPolicyReport(t *testing.T) {
	distro := filepath.Join("..", "..", "builder", "rpm2deb", "testdata", "distro")
	c5 := filepath.Join(distro, "centos-release-5-0.0.el5.centos.2.x86_64.rpm")
	c6 := filepath.Join(distro, "centos-release-6-0.el6.centos.5.x86_64.rpm")
	c3 := filepath.Join(distro, "centos-release-3.1-1.i386.rpm")
	code, stdout, stderr := runApp(t, nil, "convert", "rpm2deb", "--json", "-o", t.TempDir(), c5, c6, c3)
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var reps []rpm2deb.Report
	if err := json.Unmarshal([]byte(stdout), &reps); err != nil || len(reps) != 3 {
		t.Fatalf("--json: %v, %d reports\n%s", err, len(reps), stdout)
	}
	has := func(r rpm2deb.Report, action, what, from, to string) bool {
		for _, it := range r.Items {
			if it.Action == action && it.What == what && it.From == from && (to == "" || it.To == to) {
				return true
			}
		}
		return false
	}
	for _, w := range []struct {
		rep                    int
		action, what, from, to string
	}{
		{0, rpm2deb.Approximated, "conffile", "/etc/redhat-release", "conffile"},
		{0, rpm2deb.Mapped, "%config", "/etc/issue", "conffile"},
		{0, rpm2deb.Dropped, "bytecode", "/usr/share/firstboot/modules/eula.pyc", ""},
		{0, rpm2deb.Dropped, "bytecode", "/usr/share/firstboot/modules/eula.pyo", ""},
		{0, rpm2deb.Mapped, "License", "GPL", "/usr/share/common-licenses/GPL"},
		{0, rpm2deb.Approximated, "Maintainer", "Vendor: CentOS", "CentOS <unknown@rpm2deb.invalid>"},
		{1, rpm2deb.Approximated, "Maintainer", "Packager: CentOS BuildSystem <http://bugs.centos.org>", "CentOS BuildSystem <unknown@rpm2deb.invalid>"},
		{1, rpm2deb.Mapped, "License", "GPLv2", "/usr/share/common-licenses/GPL-2"},
		{2, rpm2deb.Approximated, "Summary", "Summary, Description", "Description"},
	} {
		if !has(reps[w.rep], w.action, w.what, w.from, w.to) {
			t.Errorf("%s: no item %s %s %s → %s", reps[w.rep].Input, w.action, w.what, w.from, w.to)
		}
	}
	code, stdout, _ = runApp(t, nil, "convert", "rpm2deb", "-o", t.TempDir(), c5)
	for _, want := range []string{"approximated conffile     /etc/redhat-release → conffile  (added:", "dropped      bytecode     /usr/share/firstboot/modules/eula.pyc"} {
		if code != cli.ExitOK || !strings.Contains(stdout, want) {
			t.Errorf("text report lacks %q:\n%s", want, stdout)
		}
	}
}
