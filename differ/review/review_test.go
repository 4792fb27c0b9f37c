package review_test

import (
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/differ"
	"github.com/ingotfleet/ingot/differ/differtest"
	"github.com/ingotfleet/ingot/differ/review"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// downloadFromBookworm fetches a package as it is in bookworm main (the
// base image's repository) with the host's apt.
func downloadFromBookworm(t *testing.T, pkg, dir string) string {
	t.Helper()
	out, err := exec.Command("apt-cache", "madison", pkg).Output()
	if err != nil {
		t.Fatalf("apt-cache madison %s: %v", pkg, err)
	}
	m := regexp.MustCompile(`(?m)^\s*\S+\s*\|\s*(\S+)\s*\|.* bookworm/main `).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no bookworm/main version of %s in the host's apt sources:\n%s", pkg, out)
	}
	cmd := exec.Command("apt-get", "download", pkg+"="+string(m[1]))
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apt-get download: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("downloaded %v", debs)
	}
	return debs[0]
}

// TestReviewOpenSSHServer reviews openssh-server on a minbase image: the
// report shows the user and group its scripts (and its dependency's)
// create, the host keys, configuration and service links they generate
// outside the package's file list, the package's own files, conffiles and
// scripts.
func TestReviewOpenSSHServer(t *testing.T) {
	t.Parallel() // mostly waiting on the mirror and on dpkg
	testenv.RequireTool(t, "unshare", "util-linux")
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	base := filepath.Join(differtest.RealImages(t), "minbase.tar")
	deb := downloadFromBookworm(t, "openssh-server", t.TempDir())
	rv, err := review.Run(context.Background(), base, deb, review.Options{Options: differ.DefaultOptions()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	account := func(cs []review.AccountChange, name, field string) bool {
		for _, c := range cs {
			if c.Kind == differ.Added && c.Name == name && strings.Contains(c.New, field) {
				return true
			}
		}
		return false
	}
	if !account(rv.Users, "sshd", ":/run/sshd:/usr/sbin/nologin") {
		t.Errorf("the review does not show user sshd added: %+v", rv.Users)
	}
	if !account(rv.Groups, "_ssh", "_ssh:x:") {
		t.Errorf("the review does not show group _ssh added: %+v", rv.Groups)
	}
	paths := func(cs []differ.Change, kind differ.DeltaKind) []string {
		var ps []string
		for _, c := range cs {
			if c.Kind == kind {
				ps = append(ps, c.Path)
			}
		}
		return ps
	}
	outside := paths(rv.Outside, differ.Added)
	for _, p := range []string{"/etc/ssh/sshd_config", "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub", "/etc/ssh/ssh_host_rsa_key"} {
		if !slices.Contains(outside, p) {
			t.Errorf("%s is not among the paths made outside the file list: %v", p, outside)
		}
	}
	changedOutside := paths(rv.Outside, differ.Changed)
	for _, p := range []string{"/etc/passwd", "/etc/group", "/etc/shadow"} {
		if !slices.Contains(changedOutside, p) {
			t.Errorf("%s is not among the paths changed outside the file list: %v", p, changedOutside)
		}
	}
	if s := paths(rv.Services, differ.Added); !slices.Contains(s, "/etc/systemd/system/multi-user.target.wants/ssh.service") {
		t.Errorf("the ssh.service link is not among the services: %v", s)
	}
	if f := paths(rv.Files, differ.Added); !slices.Contains(f, "/usr/sbin/sshd") || slices.Contains(f, "/etc/ssh/sshd_config") {
		t.Errorf("the package's own files should hold /usr/sbin/sshd and not the generated sshd_config: %v", f)
	}
	if !slices.Contains(rv.Package.Conffiles, "/etc/pam.d/sshd") {
		t.Errorf("conffiles %v lack /etc/pam.d/sshd", rv.Package.Conffiles)
	}
	var postinst string
	for _, s := range rv.Package.Scripts {
		if s.Name == "postinst" {
			postinst = s.Text
		}
	}
	if !strings.Contains(postinst, "sshd") {
		t.Errorf("the postinst text is missing: %q", postinst)
	}
	var deps []string
	for _, d := range rv.Dependencies {
		deps = append(deps, d.Name)
	}
	if !slices.Contains(deps, "openssh-client") {
		t.Errorf("dependencies %v lack openssh-client", deps)
	}
	if len(rv.Changelog) != 1 || rv.Changelog[0].Version != rv.Package.Version {
		t.Errorf("changelog of a package new to the base: want the entry of %s, got %+v (%s)", rv.Package.Version, rv.Changelog, rv.ChangelogNote)
	}
}

// TestReviewMissingDependency: a package whose dependencies the base's
// repositories cannot satisfy fails, naming them.
func TestReviewMissingDependency(t *testing.T) {
	t.Parallel()
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	base := filepath.Join(differtest.RealImages(t), "minbase.tar")
	dir := t.TempDir()
	pkg := filepath.Join(dir, "needy")
	for f, text := range map[string]string{
		"DEBIAN/control":         "Package: needy\nVersion: 1.0\nArchitecture: all\nMaintainer: T <t@example.org>\nDepends: ingot-no-such-package (>= 9)\nDescription: test\n test\n",
		"usr/share/needy/README": "hello\n",
	} {
		if out, err := exec.Command("install", "-D", "-m", "0644", "/dev/stdin", filepath.Join(pkg, f)).CombinedOutput(); err != nil {
			t.Fatal(err, string(out))
		}
		cmd := exec.Command("sh", "-c", "printf '%s' \"$1\" > \"$2\"", "sh", text, filepath.Join(pkg, f))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatal(err, string(out))
		}
	}
	deb := filepath.Join(dir, "needy.deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", pkg, deb).CombinedOutput(); err != nil {
		t.Fatal(err, string(out))
	}
	_, err := review.Run(context.Background(), base, deb, review.Options{Options: differ.DefaultOptions()}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "ingot-no-such-package") {
		t.Fatalf("error %v, want one naming ingot-no-such-package", err)
	}
}
