package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/deb/debtest"
	"github.com/ingotfleet/ingot/builder/debrepo/debrepotest"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// gzipWithHeader compresses s with a file name and an mtime in the gzip
// header, as `gzip` without -n does: something normalize must fix.
func gzipWithHeader(t *testing.T, s string) string {
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	z.Name = "page.1"
	z.ModTime = z.ModTime.AddDate(2030, 0, 0)
	z.Write([]byte(s))
	z.Close()
	return b.String()
}

// localRepoSpec builds a signed local repository of made-up packages on
// top of the host's own programs (debtest.HostBase) and writes a spec for
// it. Everything the build needs is local: no mirror, no network.
func localRepoSpec(t *testing.T, port int) (specPath string) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	testenv.RequireTool(t, "gpg", "gnupg")
	dir := t.TempDir()
	debs := t.TempDir()
	order := func(pkg, script string) string {
		return fmt.Sprintf("#!/bin/sh\nset -e\nmkdir -p /var/lib/test\necho \"%s %s $1\" >> /var/lib/test/order\n", script, pkg)
	}
	files := []string{
		debtest.HostBase(t, debs),
		debtest.Build(t, debs, debtest.Package{
			Name: "alpha", Version: "1.0-1", Architecture: "amd64",
			Fields: map[string]string{"Depends": "hostbase"},
			Files: map[string]debtest.File{
				"etc/alpha.conf":                 {Content: "alpha=1\n"},
				"usr/bin/alpha":                  {Mode: 0o755, Content: "#!/bin/sh\necho alpha\n"},
				"usr/share/alpha/shared":         {Content: "from alpha\n"},
				"usr/share/doc/alpha/copyright":  {Content: "alpha copyright\n"},
				"usr/share/doc/alpha/README":     {Content: "alpha readme\n"},
				"usr/share/man/man1/alpha.1.gz":  {Content: gzipWithHeader(t, ".TH ALPHA 1\n")},
				"usr/lib/alpha/setuid-helper":    {Mode: os.ModeSetuid | 0o755, Content: "helper"},
				"usr/share/alpha/link-to-shared": {Mode: os.ModeSymlink, Content: "shared"},
				"usr/share/alpha/empty-dir/":     {Mode: os.ModeDir},
			},
			Scripts:   map[string]string{"preinst": order("alpha", "preinst"), "postinst": order("alpha", "postinst")},
			Conffiles: []string{"/etc/alpha.conf"},
		}),
		debtest.Build(t, debs, debtest.Package{
			Name: "beta", Version: "0.5", Architecture: "all", Compression: "gzip",
			Fields: map[string]string{"Pre-Depends": "alpha (>= 1.0)"},
			Files:  map[string]debtest.File{"usr/share/beta/data": {Content: "beta\n"}},
			Scripts: map[string]string{
				"preinst": order("beta", "preinst"),
				// The sandbox has no network: this connection must fail.
				"postinst": order("beta", "postinst") + fmt.Sprintf(
					"if bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d' 2>/dev/null; then echo connected; else echo no-network; fi > /var/lib/test/network\n", port),
			},
		}),
		debtest.Build(t, debs, debtest.Package{
			Name: "gamma", Version: "1", Architecture: "all", Compression: "none",
			Fields: map[string]string{"Depends": "beta", "Replaces": "alpha (<< 2)"},
			Files:  map[string]debtest.File{"usr/share/alpha/shared": {Content: "from gamma, which Replaces alpha\n"}},
		}),
		debtest.Build(t, debs, debtest.Package{
			Name: "libeps1", Version: "3.1-2", Architecture: "amd64",
			Fields:  map[string]string{"Multi-Arch": "same", "Depends": "hostbase"},
			Files:   map[string]debtest.File{"usr/lib/x86_64-linux-gnu/libeps.so.1": {Content: "not really ELF"}},
			Scripts: map[string]string{"triggers": "activate-noawait ldconfig\n"},
		}),
	}
	repo := debrepotest.NewRepo(t, filepath.Join(dir, "repo"), debrepotest.Options{}, files...)
	overlay := filepath.Join(dir, "overlay")
	if err := os.MkdirAll(filepath.Join(overlay, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(overlay, "etc", "motd"), []byte("built by ingot\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := fmt.Sprintf(`name: local
architectures: [amd64]
repositories:
  - url: %s
    suites: [stable]
    components: [main]
    keyring: %s
variant: minbase
packages: [alpha, beta, gamma, libeps1]
exclude: ["/usr/share/doc/*"]
keep: ["/usr/share/doc/*/copyright"]
overlay: overlay
customize:
  - echo customized > /etc/customized
`, repo.URL, repo.Key.Keyring)
	specPath = filepath.Join(dir, "local.yaml")
	if err := os.WriteFile(specPath, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runApp(t, nil, "lock", specPath); code != 0 {
		t.Fatalf("ingot lock: exit %d\n%s%s", code, out, errs)
	}
	return specPath
}

func extract(t *testing.T, tarPath string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("tar", "--zstd", "-xpf", tarPath, "--numeric-owner", "--xattrs", "-C", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("extracting %s: %v\n%s", tarPath, err, out)
	}
	return dir
}

func chroot(t *testing.T, root string, args ...string) string {
	t.Helper()
	out, err := exec.Command("chroot", append([]string{root}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("chroot %s %v: %v\n%s", root, args, err, out)
	}
	return string(out)
}

// TestBuildLocalRepository builds an image from a signed local repository
// twice: the same digest and byte-identical tars; inside the image dpkg
// knows every package as installed, conffiles are configured, scripts
// ran in dependency order without network, excludes, keep, overlay,
// customize and normalisation did their job.
func TestBuildLocalRepository(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	specPath := localRepoSpec(t, ln.Addr().(*net.TCPAddr).Port)
	work := t.TempDir()
	env := map[string]string{"INGOT_STORE": filepath.Join(work, "store"), "INGOT_CACHE": filepath.Join(work, "cache")}
	var digests []string
	for i := 0; i < 2; i++ {
		out := filepath.Join(work, fmt.Sprintf("image%d.tar.zst", i))
		code, stdout, stderr := runApp(t, env, "build", specPath, "-o", out, "--work-dir", filepath.Join(work, fmt.Sprint("w", i)))
		if code != 0 {
			t.Fatalf("ingot build: exit %d\n%s\n%s", code, stdout, stderr)
		}
		digests = append(digests, strings.TrimSpace(stdout))
	}
	if digests[0] != digests[1] || len(digests[0]) != 64 {
		t.Fatalf("two builds gave %q and %q", digests[0], digests[1])
	}
	a, _ := os.ReadFile(filepath.Join(work, "image0.tar.zst"))
	b, _ := os.ReadFile(filepath.Join(work, "image1.tar.zst"))
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same lock gave different tars")
	}
	for _, side := range []string{"image0.manifest", "image0.packages", "image0.spdx.json", "image0.provenance.json"} {
		if fi, err := os.Stat(filepath.Join(work, side)); err != nil || fi.Size() == 0 {
			t.Errorf("side file %s: %v", side, err)
		}
	}
	pkgs, _ := os.ReadFile(filepath.Join(work, "image0.packages"))
	wantPkgs := "alpha 1.0-1 amd64\nbeta 0.5 all\ngamma 1 all\nhostbase 1.0 amd64\nlibeps1 3.1-2 amd64\n"
	if string(pkgs) != wantPkgs {
		t.Errorf("package list:\n%s\nwant:\n%s", pkgs, wantPkgs)
	}

	root := extract(t, filepath.Join(work, "image0.tar.zst"))
	// dpkg inside the image: every package installed, owners known.
	list := chroot(t, root, "dpkg-query", "-W", "-f=${db:Status-Abbrev}${Package}\n")
	for _, p := range []string{"alpha", "beta", "gamma", "hostbase", "libeps1"} {
		if !strings.Contains(list, "ii "+p+"\n") {
			t.Errorf("dpkg does not list %s as installed (ii):\n%s", p, list)
		}
	}
	if got := chroot(t, root, "dpkg", "-S", "/usr/bin/alpha"); got != "alpha: /usr/bin/alpha\n" {
		t.Errorf("dpkg -S /usr/bin/alpha = %q", got)
	}
	if got := chroot(t, root, "dpkg", "-S", "/usr/share/alpha/shared"); got != "gamma: /usr/share/alpha/shared\n" {
		t.Errorf("dpkg -S of the replaced file = %q, want gamma", got)
	}
	checks := map[string]string{
		"/usr/share/alpha/shared":        "from gamma, which Replaces alpha\n",
		"/etc/alpha.conf":                "alpha=1\n",
		"/etc/motd":                      "built by ingot\n",
		"/etc/customized":                "customized\n",
		"/var/lib/test/network":          "no-network\n",
		"/usr/share/doc/alpha/copyright": "alpha copyright\n",
		"/var/lib/test/order": "preinst alpha install\npreinst beta install\n" +
			"postinst alpha configure\npostinst beta configure\n",
	}
	for p, want := range checks {
		got, err := os.ReadFile(filepath.Join(root, p))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q (%v), want %q", p, got, err, want)
		}
	}
	for _, gone := range []string{"/usr/share/doc/alpha/README", "/etc/alpha.conf.dpkg-new", "/usr/sbin/policy-rc.d"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); err == nil {
			t.Errorf("%s should not be in the image", gone)
		}
	}
	if l, _ := os.ReadFile(filepath.Join(root, "var/lib/dpkg/info/alpha.list")); strings.Contains(string(l), "README") ||
		strings.Contains(string(l), "/usr/share/alpha/shared") || !strings.Contains(string(l), "copyright") {
		t.Errorf("alpha.list not fixed for excludes and the replaced file:\n%s", l)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/dpkg/info/libeps1:amd64.list")); err != nil {
		t.Errorf("Multi-Arch: same package's list is not named pkg:arch: %v", err)
	}
	status, _ := os.ReadFile(filepath.Join(root, "var/lib/dpkg/status"))
	if !strings.Contains(string(status), "Conffiles:\n /etc/alpha.conf ") || strings.Contains(string(status), "newconffile") {
		t.Errorf("alpha's conffile is not configured in the status file")
	}
	if fi, err := os.Stat(filepath.Join(root, "usr/lib/alpha/setuid-helper")); err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Errorf("setuid bit lost: %v %v", fi.Mode(), err)
	}
	gz, _ := os.ReadFile(filepath.Join(root, "usr/share/man/man1/alpha.1.gz"))
	if len(gz) < 10 || gz[3]&0x08 != 0 || !bytes.Equal(gz[4:8], []byte{0, 0, 0, 0}) {
		t.Errorf("gzip header not normalized: % x", gz[:min(len(gz), 16)])
	}
}

// TestBuildCheck: --check says OK for the local repository, and names the
// path when a customize command writes random bytes.
func TestBuildCheck(t *testing.T) {
	specPath := localRepoSpec(t, 9)
	work := t.TempDir()
	env := map[string]string{"INGOT_STORE": filepath.Join(work, "store"), "INGOT_CACHE": filepath.Join(work, "cache")}
	code, stdout, stderr := runApp(t, env, "build", "--check", specPath, "--work-dir", work, "--progress", "none")
	if code != 0 || !strings.HasPrefix(stdout, "OK ") {
		t.Fatalf("build --check: exit %d\n%s\n%s", code, stdout, stderr)
	}
	data, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	noisy := strings.Replace(string(data), "customize:\n", "customize:\n  - head -c 16 /dev/urandom > /etc/random-noise\n", 1)
	if err := os.WriteFile(specPath, []byte(noisy), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runApp(t, env, "build", "--check", specPath, "--work-dir", work, "--progress", "none")
	if code != 1 || !strings.Contains(stdout, "first differing path /etc/random-noise (changed: size") &&
		!strings.Contains(stdout, "first differing path /etc/random-noise (changed: sha256digest") {
		t.Fatalf("build --check of a noisy spec: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestBuildRefusesBadInputs: a .deb in the cache that does not match the
// lock and a lock that no longer belongs to its spec are refused with
// errors naming them, and no image is made.
func TestBuildRefusesBadInputs(t *testing.T) {
	specPath := localRepoSpec(t, 9)
	work := t.TempDir()
	cache := filepath.Join(work, "cache")
	env := map[string]string{"INGOT_STORE": filepath.Join(work, "store"), "INGOT_CACHE": cache}
	if code, out, errs := runApp(t, env, "build", specPath, "--progress", "none"); code != 0 {
		t.Fatalf("first build: exit %d\n%s%s", code, out, errs)
	}
	// Same size, one byte flipped: the cache takes it for whole, the
	// builder's own check against the lock does not.
	debs, _ := filepath.Glob(filepath.Join(cache, "debs", "sha256", "*", "*"))
	if len(debs) == 0 {
		t.Fatal("no cached .deb")
	}
	var victim string
	for _, d := range debs {
		if data, _ := os.ReadFile(d); bytes.Contains(data, []byte("data.tar")) && len(data) > 2000 && !strings.Contains(d, "partial") {
			victim = d
			data[len(data)-100] ^= 0xff
			os.WriteFile(victim, data, 0o644)
			break
		}
	}
	code, out, errs := runApp(t, env, "build", specPath, "--progress", "none", "--name", "tampered:1")
	if code != 2 || !strings.Contains(errs, "does not match the lock") || !strings.Contains(errs, filepath.Base(victim)) {
		t.Fatalf("build with a tampered cached .deb: exit %d\n%s%s", code, out, errs)
	}
	if c, _, _ := runApp(t, env, "image", "ls"); c == 0 {
		if _, ls, _ := runApp(t, env, "image", "ls"); strings.Contains(ls, "tampered") {
			t.Error("an image was stored from a tampered package")
		}
	}
	os.RemoveAll(cache)

	data, _ := os.ReadFile(specPath)
	os.WriteFile(specPath, bytes.Replace(data, []byte("packages: [alpha, beta, gamma, libeps1]"), []byte("packages: [alpha, beta]"), 1), 0o644)
	code, out, errs = runApp(t, env, "build", specPath, "--progress", "none")
	if code != 2 || !strings.Contains(errs, "run `ingot lock") {
		t.Fatalf("build with a stale lock: exit %d\n%s%s", code, out, errs)
	}
}

func TestNormalizeCommand(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "page.1.gz"), []byte(gzipWithHeader(t, "x")), 0o644)
	os.WriteFile(filepath.Join(dir, "plain"), []byte("x"), 0o644)
	code, out, errs := runApp(t, map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}, "normalize", dir)
	if code != 0 || !strings.Contains(out, "page.1.gz: gzip normalized") || !strings.Contains(out, "mtimes clamped") {
		t.Fatalf("normalize: exit %d\n%s%s", code, out, errs)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "plain")); fi.ModTime().Unix() != 1700000000 {
		t.Errorf("mtime %v not clamped", fi.ModTime())
	}
	code, out, _ = runApp(t, nil, "normalize", "--source-date-epoch", "1700000000", "--json", dir)
	if code != 0 || !strings.Contains(out, `"changes": []`) {
		t.Errorf("second normalize changed something or failed: exit %d\n%s", code, out)
	}
	if code, _, errs := runApp(t, nil, "normalize", dir); code != 3 || !strings.Contains(errs, "SOURCE_DATE_EPOCH") {
		t.Errorf("normalize without a time: exit %d %s", code, errs)
	}
}
