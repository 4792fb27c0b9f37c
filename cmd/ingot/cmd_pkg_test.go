package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/builder/pkgbuild"
	"github.com/ingotfleet/ingot/builder/sandbox"
	"github.com/ingotfleet/ingot/builder/spec"
	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// pkgEnv is the environment of the package build tests: the minimal
// example spec as the base, the download cache and the build-root cache
// kept in the test cache between runs (every build of these tests has
// the same build dependencies, debhelper-compat 13, so they share one
// build root).
type pkgEnv struct {
	env       map[string]string
	dir, base string
	cache     string
	roots     string
}

func newPkgEnv(t *testing.T) *pkgEnv {
	t.Helper()
	testenv.RequireRoot(t)
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, "base.yaml")
	if err := os.WriteFile(base, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := filepath.Join(testenv.CacheDir(t), "pkgbuild")
	return &pkgEnv{env: map[string]string{"INGOT_STORE": filepath.Join(dir, "store")}, dir: dir, base: base,
		cache: filepath.Join(c, "cache"), roots: filepath.Join(c, "roots")}
}

func (e *pkgEnv) build(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	all := append([]string{"pkg", "build", "--base", e.base, "--cache", e.cache, "--root-cache", e.roots, "--progress", "none"}, args...)
	code, out, errs := runApp(t, e.env, all...)
	t.Logf("ingot %s: exit %d\n%s", strings.Join(all, " "), code, out)
	return code, out, errs
}

// cachedRoot is the one build root in the root cache: every build of
// these tests uses it.
func (e *pkgEnv) cachedRoot(t *testing.T) string {
	t.Helper()
	ents, err := os.ReadDir(e.roots)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range ents {
		if en.IsDir() && !strings.HasSuffix(en.Name(), ".tmp") {
			return filepath.Join(e.roots, en.Name())
		}
	}
	t.Fatalf("no build root in %s", e.roots)
	return ""
}

// writeTree writes a native source package "name" 1.0 (arch all, built
// with debhelper) whose build runs buildCmds and installs the files
// named in install below /usr/share/NAME.
func writeTree(t *testing.T, dir, name string, buildCmds, install []string) string {
	t.Helper()
	tree := filepath.Join(dir, name)
	files := map[string]string{
		"debian/control": fmt.Sprintf(`Source: %[1]s
Section: misc
Priority: optional
Maintainer: ingot tests <tests@ingot.invalid>
Build-Depends: debhelper-compat (= 13)
Standards-Version: 4.6.2
Rules-Requires-Root: no

Package: %[1]s
Architecture: all
Description: probe of the build environment
 Records what the build saw.
`, name),
		"debian/changelog":     name + " (1.0) unstable; urgency=medium\n\n  * Test.\n\n -- ingot tests <tests@ingot.invalid>  Mon, 01 Jan 2024 00:00:00 +0000\n",
		"debian/source/format": "3.0 (native)\n",
		"debian/copyright":     "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n",
	}
	rules := "#!/usr/bin/make -f\n%:\n\tdh $@\n\noverride_dh_auto_build:\n"
	for _, c := range buildCmds {
		rules += "\t" + c + "\n"
	}
	rules += "\noverride_dh_auto_install:\n"
	for _, f := range install {
		rules += fmt.Sprintf("\tinstall -D -m644 %s debian/%s/usr/share/%s/%s\n", f, name, name, f)
	}
	if len(install) == 0 {
		rules += "\ttrue\n"
	}
	files["debian/rules"] = rules
	for p, c := range files {
		full := filepath.Join(tree, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if p == "debian/rules" {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(c), mode); err != nil {
			t.Fatal(err)
		}
	}
	return tree
}

// debFile reads one file out of a .deb.
func debFile(t *testing.T, deb, path string) string {
	t.Helper()
	x := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", deb, x).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x %s: %v\n%s", deb, err, out)
	}
	data, err := os.ReadFile(filepath.Join(x, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestPkgBuildHello builds Debian's hello from the mirror twice (the
// second time from the build lock the first wrote, with --previous the
// first's package): the .deb files are byte-identical, --previous says
// unchanged with exit code 4, the package installs into the build root
// with dpkg --verify clean, and ingot review shows its files.
func TestPkgBuildHello(t *testing.T) {
	e := newPkgEnv(t)
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	lock := filepath.Join(e.dir, "hello.build-lock")
	a, b := filepath.Join(e.dir, "a"), filepath.Join(e.dir, "b")
	if code, _, errs := e.build(t, "--from-repo", "hello=2.10-3", "--lock", lock, "-o", a); code != 0 {
		t.Fatalf("first build: exit %d\n%s", code, errs)
	}
	l, err := spec.LoadLock(lock)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range l.Packages {
		names = append(names, p.Name)
	}
	for _, want := range []string{"build-essential", "debhelper", "gcc", "dpkg-dev"} {
		if !slices.Contains(names, want) {
			t.Errorf("build lock lacks %s", want)
		}
	}
	if slices.Contains(names, "ingot-build-deps-hello") {
		t.Error("the stand-in package is in the build lock")
	}
	helloA := filepath.Join(a, "hello_2.10-3_amd64.deb")
	code, out, errs := e.build(t, "--from-repo", "hello=2.10-3", "--lock", lock, "-o", b, "--previous", helloA)
	if code != cli.ExitSame || !strings.Contains(out, "UNCHANGED hello_2.10-3_amd64.deb") {
		t.Fatalf("second build with --previous: exit %d, want %d\n%s%s", code, cli.ExitSame, out, errs)
	}
	debs, _ := filepath.Glob(filepath.Join(a, "*.deb"))
	if len(debs) < 1 {
		t.Fatal("no .deb built")
	}
	for _, da := range debs {
		x, err := os.ReadFile(da)
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, filepath.Base(da)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between the two builds", filepath.Base(da))
		}
	}
	rec, err := os.ReadFile(filepath.Join(a, "hello_2.10-3_amd64.ingot-buildinfo"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Source: hello\n", "Build-Path: /build/hello-2.10\n", "hello_2.10-3_amd64.deb\n", " debhelper (= "} {
		if !strings.Contains(string(rec), want) {
			t.Errorf("build record lacks %q:\n%s", want, rec)
		}
	}
	// hello ships gzip'd man and info pages and translations: the gzip
	// headers carry no time stamp and no name.
	for _, p := range []string{"usr/share/man/man1/hello.1.gz", "usr/share/info/hello.info.gz"} {
		gz := debFile(t, helloA, p)
		if len(gz) < 10 || gz[0] != 0x1f || gz[1] != 0x8b || gz[4:8] != "\x00\x00\x00\x00" || gz[3]&0x08 != 0 {
			t.Errorf("%s: not a gzip file without time stamp and name: % x", p, gz[:min(len(gz), 10)])
		}
	}
	if mo := debFile(t, helloA, "usr/share/locale/de/LC_MESSAGES/hello.mo"); !strings.Contains(mo, "Hallo") {
		t.Error("the German translation does not say Hallo")
	}

	// Install it into a copy of the build root and verify it.
	root := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", e.cachedRoot(t), root).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(root, "tmp/hello.deb"), mustRead(t, helloA), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	err = sandbox.Run(context.Background(), root, []string{"/bin/sh", "-c", "dpkg -i /tmp/hello.deb && dpkg --verify hello && hello"},
		sandbox.Options{Stdout: &log, Stderr: &log})
	if err != nil || !strings.Contains(log.String(), "Hello, world!") {
		t.Fatalf("dpkg -i, dpkg --verify, hello: %v\n%s", err, log.String())
	}
	if strings.Contains(log.String(), "??") {
		t.Errorf("dpkg --verify reports changed files:\n%s", log.String())
	}

	// ingot review shows what it installs.
	code, out, errs = runApp(t, e.env, "review", helloA, "--base", e.cachedRoot(t))
	if code != 0 || !strings.Contains(out, "/usr/bin/hello") {
		t.Fatalf("ingot review: exit %d\n%s%s", code, out, errs)
	}

	// An image spec names the built package: it is locked as a local
	// package and installed into the image.
	img := filepath.Join(e.dir, "img.yaml")
	if err := os.WriteFile(img, append(mustRead(t, e.base), "debs:\n  - a/hello_2.10-3_amd64.deb\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"INGOT_STORE": e.env["INGOT_STORE"], "INGOT_CACHE": e.cache}
	if code, out, errs := runApp(t, env, "lock", img); code != 0 {
		t.Fatalf("ingot lock: exit %d\n%s%s", code, out, errs)
	}
	il, err := spec.LoadLock(filepath.Join(e.dir, "img.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(il.Packages, func(p spec.LockedPackage) bool { return p.Name == "hello" }); i < 0 || il.Packages[i].Local != "a/hello_2.10-3_amd64.deb" {
		t.Fatalf("the image lock does not hold hello as a local package")
	}
	tarPath := filepath.Join(e.dir, "img.tar")
	build(t, env, img, tarPath)
	if paths := tarPaths(t, tarPath); !slices.Contains(paths, "/usr/bin/hello") {
		t.Error("the image lacks /usr/bin/hello")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestPkgBuildEnvironment builds a probe package that records what its
// build saw: the build root holds exactly the locked packages (an
// undeclared build dependency such as zlib1g-dev is absent), the build
// path, host name, umask and time zone are the fixed ones; --check,
// whose second build varies them, names the probe's record as the first
// differing file, with the build path as the cause.
func TestPkgBuildEnvironment(t *testing.T) {
	e := newPkgEnv(t)
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	tree := writeTree(t, e.dir, "probe", []string{
		"test ! -e /usr/include/zlib.h",
		"dpkg-query -W -f '$${Package}\\n' | sort > build-packages",
		"{ pwd; hostname; umask; date +%Z; echo \"$$SOURCE_DATE_EPOCH\"; } > env",
	}, []string{"build-packages", "env"})
	lock := filepath.Join(e.dir, "probe.build-lock")
	out := filepath.Join(e.dir, "out")
	if code, _, errs := e.build(t, tree, "--lock", lock, "-o", out); code != 0 {
		t.Fatalf("build: exit %d\n%s", code, errs)
	}
	deb := filepath.Join(out, "probe_1.0_all.deb")
	l, err := spec.LoadLock(lock)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, p := range l.Packages {
		want = append(want, p.Name)
	}
	slices.Sort(want)
	got := strings.Fields(debFile(t, deb, "usr/share/probe/build-packages"))
	if !slices.Equal(got, want) {
		t.Errorf("packages in the build root differ from the build lock:\nroot: %v\nlock: %v", got, want)
	}
	if slices.Contains(got, "zlib1g-dev") {
		t.Error("zlib1g-dev, not declared, is in the build root")
	}
	env := strings.Split(strings.TrimSpace(debFile(t, deb, "usr/share/probe/env")), "\n")
	if wantEnv := []string{"/build/probe-1.0", "ingot-build", "0022", "UTC", "1704067200"}; !slices.Equal(env, wantEnv) {
		t.Errorf("the build saw %q, want %q", env, wantEnv)
	}

	code, stdout, errs := e.build(t, tree, "--lock", lock, "-o", filepath.Join(e.dir, "check"), "--check")
	if code != cli.ExitNegative || !strings.Contains(stdout, "DIFFERS: probe_1.0_all.deb: data.tar/usr/share/probe/env (content): likely cause: build path") {
		t.Fatalf("--check: exit %d, want %d naming usr/share/probe/env and the build path\n%s%s", code, cli.ExitNegative, stdout, errs)
	}
}

// TestPkgBuildNoNetwork: a build that connects to the Debian mirror
// (which the test itself reaches) fails, and the error says the build
// tried the network.
func TestPkgBuildNoNetwork(t *testing.T) {
	e := newPkgEnv(t)
	ips, err := net.DefaultResolver.LookupIP(context.Background(), "ip4", "deb.debian.org")
	if err != nil || len(ips) == 0 {
		t.Fatalf("resolving deb.debian.org: %v", err)
	}
	addr := net.JoinHostPort(ips[0].String(), "80")
	c, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		t.Fatalf("control: the test cannot reach %s itself: %v", addr, err)
	}
	c.Close()
	tree := writeTree(t, e.dir, "netprobe", []string{
		fmt.Sprintf("bash -c 'exec 3<>/dev/tcp/%s/80'", ips[0]),
	}, nil)
	code, _, errs := e.build(t, tree, "--lock", filepath.Join(e.dir, "netprobe.build-lock"), "-o", filepath.Join(e.dir, "out"))
	if code != cli.ExitError {
		t.Fatalf("build that connects to %s: exit %d, want %d\n%s", addr, code, cli.ExitError, errs)
	}
	for _, want := range []string{"package build failed", "the build tried to reach the network", "Network is unreachable"} {
		if !strings.Contains(errs, want) {
			t.Errorf("error lacks %q:\n%s", want, errs)
		}
	}
}

// TestPkgBuildDebianSources runs --check on real Debian source packages
// of other kinds: C libraries with shared-library, -dev and udeb
// packages (libmd; zlib, with its 32-bit multilib packages), and a
// Python package (python-hashids; the mirror the tests reach lacks some
// source files, python-toml's and the bookworm-security zlib's among
// them). Both builds, the second under varied conditions, must give
// byte-identical packages.
func TestPkgBuildDebianSources(t *testing.T) {
	e := newPkgEnv(t)
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	for _, tc := range []struct {
		source string
		debs   map[string]string // package file -> a path it must ship
	}{
		{"libmd=1.0.4-2", map[string]string{
			"libmd0_1.0.4-2_amd64.deb":    "usr/lib/x86_64-linux-gnu/libmd.so.0",
			"libmd-dev_1.0.4-2_amd64.deb": "usr/include/md5.h",
		}},
		{"zlib=1:1.2.13.dfsg-1", map[string]string{
			"zlib1g_1.2.13.dfsg-1_amd64.deb":       "lib/x86_64-linux-gnu/libz.so.1.2.13",
			"zlib1g-dev_1.2.13.dfsg-1_amd64.deb":   "usr/include/zlib.h",
			"lib32z1_1.2.13.dfsg-1_amd64.deb":      "usr/lib32/libz.so.1*",
			"zlib1g-udeb_1.2.13.dfsg-1_amd64.udeb": "usr/lib/libz.so.1*",
		}},
		{"python-hashids=1.3.1-5", map[string]string{
			"python3-hashids_1.3.1-5_all.deb": "usr/lib/python3/dist-packages/hashids*.py",
		}},
	} {
		t.Run(tc.source, func(t *testing.T) {
			out := filepath.Join(e.dir, strings.ReplaceAll(tc.source, "=", "_"))
			code, stdout, errs := e.build(t, "--from-repo", tc.source, "-o", out, "--check")
			if code != 0 || !strings.HasPrefix(stdout, "OK ") {
				t.Fatalf("--check: exit %d\n%s%s", code, stdout, errs)
			}
			for deb, p := range tc.debs {
				x := t.TempDir()
				if msg, err := exec.Command("dpkg-deb", "-x", filepath.Join(out, deb), x).CombinedOutput(); err != nil {
					t.Fatalf("dpkg-deb -x %s: %v\n%s", deb, err, msg)
				}
				if m, _ := filepath.Glob(filepath.Join(x, p)); len(m) == 0 {
					t.Errorf("%s ships no %s", deb, p)
				}
			}
		})
	}
}

// TestPkgBuildOnImage builds on an image in the store (--base NAME:TAG):
// the minimal example built by ingot build. The build lock holds only
// what the image lacks (build-essential, debhelper, not dpkg or libc6),
// the build root is the image plus exactly those packages, and the build
// record names the image.
func TestPkgBuildOnImage(t *testing.T) {
	e := newPkgEnv(t)
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	env := map[string]string{"INGOT_STORE": e.env["INGOT_STORE"], "INGOT_CACHE": e.cache}
	if code, out, errs := runApp(t, env, "lock", e.base); code != 0 {
		t.Fatalf("ingot lock: exit %d\n%s%s", code, out, errs)
	}
	digest := build(t, env, e.base, filepath.Join(e.dir, "minimal.tar"))
	imgLock, err := spec.LoadLock(filepath.Join(e.dir, "base.lock"))
	if err != nil {
		t.Fatal(err)
	}
	tree := writeTree(t, e.dir, "probe", []string{
		"dpkg-query -W -f '$${Package}\\n' | sort > build-packages",
	}, []string{"build-packages"})
	lock := filepath.Join(e.dir, "probe.build-lock")
	out := filepath.Join(e.dir, "out")
	args := []string{"pkg", "build", tree, "--base", "minimal:latest", "--cache", e.cache, "--root-cache", e.roots,
		"--progress", "none", "--lock", lock, "-o", out}
	code, stdout, errs := runApp(t, e.env, args...)
	if code != 0 {
		t.Fatalf("ingot %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, errs)
	}
	l, err := spec.LoadLock(lock)
	if err != nil {
		t.Fatal(err)
	}
	var added []string
	for _, p := range l.Packages {
		added = append(added, p.Name)
	}
	for _, want := range []string{"build-essential", "debhelper", "gcc"} {
		if !slices.Contains(added, want) {
			t.Errorf("the build lock lacks %s", want)
		}
	}
	var inImage []string
	for _, p := range imgLock.Packages {
		inImage = append(inImage, p.Name)
		if slices.Contains(added, p.Name) {
			t.Errorf("the build lock holds %s, which the base image has", p.Name)
		}
	}
	want := slices.Sorted(slices.Values(append(inImage, added...)))
	got := strings.Fields(debFile(t, filepath.Join(out, "probe_1.0_all.deb"), "usr/share/probe/build-packages"))
	if !slices.Equal(got, want) {
		t.Errorf("packages in the build root are not the image's and the lock's:\nroot: %v\nwant: %v", got, want)
	}
	rec := string(mustRead(t, filepath.Join(out, "probe_1.0_amd64.ingot-buildinfo")))
	if !strings.Contains(rec, "Base-Image: "+digest+"\n") {
		t.Errorf("the build record does not name the base image %s:\n%s", digest, rec)
	}
	// The same build again from the lock: the same package.
	out2 := filepath.Join(e.dir, "out2")
	args[len(args)-1] = out2
	if code, stdout, errs := runApp(t, e.env, args...); code != 0 {
		t.Fatalf("second build: exit %d\n%s%s", code, stdout, errs)
	}
	if !bytes.Equal(mustRead(t, filepath.Join(out, "probe_1.0_all.deb")), mustRead(t, filepath.Join(out2, "probe_1.0_all.deb"))) {
		t.Error("two builds on the image differ")
	}
	// An unknown image is an error naming it.
	args[4] = "nosuchimage:latest"
	if code, _, errs := runApp(t, e.env, args...); code != cli.ExitError || !strings.Contains(errs, "nosuchimage:latest") {
		t.Errorf("--base nosuchimage:latest: exit %d\n%s", code, errs)
	}

	// The package goes into a local repository ingot writes and signs;
	// an image spec that names the repository and its public key
	// installs it from there.
	secret, public, repo := filepath.Join(e.dir, "repo.key"), filepath.Join(e.dir, "repo.asc"), filepath.Join(e.dir, "repo")
	for _, args := range [][]string{
		{"pkg", "repo-key", secret, public},
		{"pkg", "repo", repo, "--key", secret, filepath.Join(out, "probe_1.0_all.deb")},
	} {
		if code, stdout, errs := runApp(t, e.env, args...); code != 0 {
			t.Fatalf("ingot %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout, errs)
		}
	}
	img := filepath.Join(e.dir, "withrepo.yaml")
	local := fmt.Sprintf("  - url: file://%s\n    suites: [local]\n    components: [main]\n    keyring: repo.asc\n", repo)
	text := strings.Replace(string(mustRead(t, e.base)), "repositories:\n", "repositories:\n"+local, 1) + "packages: [probe]\n"
	if err := os.WriteFile(img, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runApp(t, env, "lock", img); code != 0 {
		t.Fatalf("ingot lock: exit %d\n%s%s", code, out, errs)
	}
	il, err := spec.LoadLock(filepath.Join(e.dir, "withrepo.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(il.Packages, func(p spec.LockedPackage) bool { return p.Name == "probe" }); i < 0 ||
		il.Repositories[il.Packages[i].Repository].URL != "file://"+repo {
		t.Fatalf("the image lock does not take probe from the local repository")
	}
	tarPath := filepath.Join(e.dir, "withrepo.tar")
	build(t, env, img, tarPath)
	if paths := tarPaths(t, tarPath); !slices.Contains(paths, "/usr/share/probe/build-packages") {
		t.Error("the image lacks the probe package's file")
	}
	// A repository signed by another key is refused.
	if code, stdout, errs := runApp(t, e.env, "pkg", "repo-key", secret+"2", public); code != 0 {
		t.Fatalf("repo-key: exit %d\n%s%s", code, stdout, errs)
	}
	if code, _, errs := runApp(t, env, "lock", img); code == 0 || !strings.Contains(errs, "InRelease") {
		t.Errorf("ingot lock with a repository signed by another key: exit %d\n%s", code, errs)
	}
}

// TestPkgBuildCheckClock: a build that records the date it ran is found
// by --check, whose second build runs with the clock moved ahead by
// libfaketime; the cause named is the time.
func TestPkgBuildCheckClock(t *testing.T) {
	e := newPkgEnv(t)
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	if _, err := os.Stat(pkgbuild.FaketimeLibs[0]); err != nil {
		t.Fatalf("--check moves the clock with libfaketime: install the Debian package faketime (%v)", err)
	}
	tree := writeTree(t, e.dir, "clockprobe", []string{"date -u +%Y > year"}, []string{"year"})
	out := filepath.Join(e.dir, "out")
	code, stdout, errs := e.build(t, tree, "--lock", filepath.Join(e.dir, "clockprobe.build-lock"), "-o", out, "--check")
	if code != cli.ExitNegative || !strings.Contains(stdout, "DIFFERS: clockprobe_1.0_all.deb: data.tar/usr/share/clockprobe/year (content): likely cause: time") {
		t.Fatalf("--check: exit %d, want %d naming usr/share/clockprobe/year and the time\n%s%s", code, cli.ExitNegative, stdout, errs)
	}
	// The first build ran on the real clock.
	if y := strings.TrimSpace(debFile(t, filepath.Join(out, "clockprobe_1.0_all.deb"), "usr/share/clockprobe/year")); y != fmt.Sprint(time.Now().UTC().Year()) {
		t.Errorf("the first build saw year %s", y)
	}
}
