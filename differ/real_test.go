package differ_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/differ"
	"github.com/ingotfleet/ingot/differ/differtest"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// dpkgVersions lists the installed packages of an extracted root with
// dpkg-query, independently of the differ's own status reader.
func dpkgVersions(t *testing.T, root string) map[string]string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W",
		"-f", "${db:Status-Abbrev}\t${Package}\t${Version}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	vs := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "\t")
		if len(f) == 3 && strings.HasPrefix(f[0], "ii") {
			vs[f[1]] = f[2]
		}
	}
	return vs
}

// extract unpacks the dpkg database and the docs of an image tar.
func extract(t *testing.T, tarFile, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("tar", "-xf", tarFile, "-C", dir, "./var/lib/dpkg", "./usr/share/doc").CombinedOutput()
	if err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
}

// TestRealImagesUpgrades diffs two real images of the same package set,
// built with and without bookworm-updates and bookworm-security: the
// report names every upgraded package (as dpkg-query sees them) with both
// versions, and exactly the changelog entries dpkg-parsechangelog --since
// lists for it.
func TestRealImagesUpgrades(t *testing.T) {
	testenv.RequireTool(t, "dpkg-parsechangelog", "dpkg-dev")
	dir := differtest.RealImages(t)
	ctx := context.Background()
	a, err := differ.Open(ctx, filepath.Join(dir, "old.tar"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := differ.Open(ctx, filepath.Join(dir, "new.tar"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := differ.Diff(ctx, a, b, differ.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	extract(t, filepath.Join(dir, "old.tar"), filepath.Join(tmp, "old"))
	extract(t, filepath.Join(dir, "new.tar"), filepath.Join(tmp, "new"))
	oldV, newV := dpkgVersions(t, filepath.Join(tmp, "old")), dpkgVersions(t, filepath.Join(tmp, "new"))
	var upgraded []string
	for p, v := range newV {
		if ov, ok := oldV[p]; ok && ov != v {
			if exec.Command("dpkg", "--compare-versions", ov, "lt", v).Run() == nil {
				upgraded = append(upgraded, p)
			}
		}
	}
	slices.Sort(upgraded)
	if len(upgraded) == 0 {
		t.Fatal("the real images have no upgraded packages: the test proves nothing")
	}
	var got []string
	for _, pc := range r.Packages {
		if pc.Change == "upgraded" {
			got = append(got, pc.Name)
		}
	}
	if !slices.Equal(got, upgraded) {
		t.Errorf("upgraded packages in the report:\n%v\nwant (dpkg-query):\n%v", got, upgraded)
	}
	for _, pc := range r.Packages {
		if pc.Change != "upgraded" {
			continue
		}
		t.Run(pc.Name, func(t *testing.T) {
			if pc.Old != oldV[pc.Name] || pc.New != newV[pc.Name] {
				t.Errorf("versions %s -> %s, want %s -> %s", pc.Old, pc.New, oldV[pc.Name], newV[pc.Name])
			}
			// Native packages (apt, ca-certificates) have changelog.gz.
			cl, err := filepath.EvalSymlinks(filepath.Join(tmp, "new/usr/share/doc", pc.Name, "changelog.Debian.gz"))
			if err != nil {
				cl, err = filepath.EvalSymlinks(filepath.Join(tmp, "new/usr/share/doc", pc.Name, "changelog.gz"))
			}
			if err != nil {
				t.Fatalf("changelog: %v", err)
			}
			sh := "zcat \"$1\" | dpkg-parsechangelog -l- --format rfc822 --since \"$2\" -S Version"
			out, err := exec.Command("sh", "-c", sh, "sh", cl, pc.Old).Output()
			if err != nil {
				t.Fatalf("dpkg-parsechangelog: %v", err)
			}
			want := strings.Fields(string(out))
			var have []string
			for _, e := range pc.Changelog {
				have = append(have, e.Version)
				if strings.TrimSpace(e.Changes) == "" {
					t.Errorf("entry %s has no text", e.Version)
				}
			}
			if !slices.Equal(have, want) {
				t.Errorf("changelog entries %v, want %v (note: %q)", have, want, pc.ChangelogNote)
			}
		})
	}
	// Same inputs, same bytes: a second run renders identically.
	a2, err := differ.Open(ctx, filepath.Join(dir, "old.tar"))
	if err != nil {
		t.Fatal(err)
	}
	b2, err := differ.Open(ctx, filepath.Join(dir, "new.tar"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := differ.Diff(ctx, a2, b2, differ.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []differ.Format{differ.FormatText, differ.FormatJSON, differ.FormatHTML} {
		var one, two bytes.Buffer
		if err := r.Write(&one, f); err != nil {
			t.Fatal(err)
		}
		if err := r2.Write(&two, f); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(one.Bytes(), two.Bytes()) {
			t.Errorf("format %d: two runs on the same images gave different reports", f)
		}
	}
	if r.Summary.PackagesAdded+r.Summary.PackagesRemoved+r.Summary.PackagesDowngraded != 0 {
		t.Errorf("same package set, yet packages added/removed/downgraded: %+v", r.Summary)
	}
}
