package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/ingotfleet/ingot/builder/normalize"
	"github.com/ingotfleet/ingot/builder/spec"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/imagetar"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// mirrorEnv locks example specs against the Debian mirror configured in
// apt, with the download cache shared between test runs.
func mirrorEnv(t *testing.T) (env map[string]string, dir string) {
	t.Helper()
	testenv.RequireRoot(t)
	dir = t.TempDir()
	env = map[string]string{
		"INGOT_STORE": filepath.Join(dir, "store"),
		"INGOT_CACHE": filepath.Join(testenv.CacheDir(t), "ingot-build-cache"),
	}
	return env, dir
}

func lockExample(t *testing.T, env map[string]string, dir, name string) (specPath string, l *spec.Lock) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	specPath = filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(specPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runApp(t, env, "lock", specPath); code != 0 {
		t.Fatalf("ingot lock %s: exit %d\n%s%s", name, code, out, errs)
	}
	l, err = spec.LoadLock(filepath.Join(dir, name+".lock"))
	if err != nil {
		t.Fatal(err)
	}
	return specPath, l
}

func build(t *testing.T, env map[string]string, specPath, out string, extra ...string) string {
	t.Helper()
	args := append([]string{"build", specPath, "-o", out, "--progress", "none"}, extra...)
	code, stdout, stderr := runApp(t, env, args...)
	if code != 0 {
		t.Fatalf("ingot build %s: exit %d\n%s\n%s", specPath, code, stdout, stderr)
	}
	return strings.TrimSpace(stdout)
}

// mmdebstrapMinbase is mmdebstrap's minbase tarball of the same suites,
// made once per package set and kept in the test cache.
func mmdebstrapMinbase(t *testing.T, l *spec.Lock) string {
	t.Helper()
	testenv.RequireTool(t, "mmdebstrap", "mmdebstrap")
	h := sha256.New()
	for _, p := range l.Packages {
		fmt.Fprintf(h, "%s %s %s\n", p.Name, p.Version, p.Architecture)
	}
	out := filepath.Join(testenv.CacheDir(t), "mmdebstrap-minbase-"+hex.EncodeToString(h.Sum(nil))[:16]+".tar")
	lock, err := os.OpenFile(out+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); err == nil {
		return out
	}
	tmp := strings.TrimSuffix(out, ".tar") + ".tmp.tar" // mmdebstrap picks the format by the name
	defer os.Remove(tmp)
	cmd := exec.Command("mmdebstrap", "--variant=minbase", "--quiet", "bookworm", tmp)
	cmd.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", l.SourceDateEpoch))
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mmdebstrap: %v\n%s", err, msg)
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func tarPaths(t *testing.T, tarPath string, args ...string) []string {
	t.Helper()
	out, err := exec.Command("tar", append(args, "-tf", tarPath)...).Output()
	if err != nil {
		t.Fatalf("tar -tf %s: %v", tarPath, err)
	}
	var paths []string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSuffix(strings.TrimPrefix(l, "./"), "/")
		if l != "" && l != "." {
			paths = append(paths, "/"+l)
		}
	}
	sort.Strings(paths)
	return paths
}

// byDesign says whether the noise list removes p on purpose.
func byDesign(p string) bool {
	for _, r := range normalize.NoiseList {
		if ok, _ := path.Match(r.Pattern, p); ok {
			return r.Action == normalize.Delete || r.Action == normalize.Regenerate
		}
	}
	return false
}

// TestBuildMinimalFromMirror builds examples/minimal.yaml from the Debian
// mirror: dpkg in the image lists every locked package as installed and
// knows who owns /bin/ls, and the image has exactly the paths of
// mmdebstrap's minbase tarball of the same package set, except what the
// noise list removes by design.
func TestBuildMinimalFromMirror(t *testing.T) {
	env, dir := mirrorEnv(t)
	specPath, l := lockExample(t, env, dir, "minimal")
	out := filepath.Join(dir, "minimal.tar.zst")
	build(t, env, specPath, out)
	root := extract(t, out)

	status := chroot(t, root, "dpkg-query", "-W", "-f=${db:Status-Abbrev}${Package} ${Version}\n")
	for _, p := range l.Packages {
		if !strings.Contains(status, "ii "+p.Name+" "+p.Version+"\n") {
			t.Errorf("dpkg-query does not show %s %s as installed (ii)", p.Name, p.Version)
		}
	}
	if n := strings.Count(status, "\n"); n != len(l.Packages) {
		t.Errorf("dpkg knows %d packages, the lock has %d", n, len(l.Packages))
	}
	if got := chroot(t, root, "dpkg", "-S", "/bin/ls"); got != "coreutils: /bin/ls\n" {
		t.Errorf("dpkg -S /bin/ls = %q, want coreutils", got)
	}
	if got := chroot(t, root, "dpkg", "-l", "coreutils"); !strings.Contains(got, "\nii  coreutils") {
		t.Errorf("dpkg -l coreutils:\n%s", got)
	}
	if got := chroot(t, root, "dpkg", "--verify"); got != "" {
		t.Errorf("dpkg --verify reports changes:\n%s", got)
	}

	ref := mmdebstrapMinbase(t, l)
	refRoot := t.TempDir()
	if msg, err := exec.Command("tar", "-xpf", ref, "-C", refRoot).CombinedOutput(); err != nil {
		t.Fatalf("extracting the reference: %v\n%s", err, msg)
	}
	// dpkg -S /usr/bin/ls: bookworm's dpkg does not know /usr/bin/ls is
	// /bin/ls (coreutils ships /bin/ls; merged /usr is a symlink): the image
	// must answer exactly as mmdebstrap's root does.
	ours, _ := exec.Command("chroot", root, "dpkg", "-S", "/usr/bin/ls").CombinedOutput()
	theirs, _ := exec.Command("chroot", refRoot, "dpkg", "-S", "/usr/bin/ls").CombinedOutput()
	if !bytes.Equal(ours, theirs) {
		t.Errorf("dpkg -S /usr/bin/ls: image says %q, mmdebstrap's root says %q", ours, theirs)
	}
	refPkgs := chroot(t, refRoot, "dpkg-query", "-W", "-f=${db:Status-Abbrev}${Package} ${Version}\n")
	if refPkgs != status {
		t.Fatalf("mmdebstrap installed another package set than the lock (mirror moved?):\nmmdebstrap:\n%s\ningot:\n%s", refPkgs, status)
	}
	a, b := tarPaths(t, ref), tarPaths(t, out, "--zstd")
	inA, inB := map[string]bool{}, map[string]bool{}
	for _, p := range a {
		inA[p] = true
	}
	for _, p := range b {
		inB[p] = true
	}
	var diffs []string
	for _, p := range a {
		if !inB[p] && !byDesign(p) {
			diffs = append(diffs, "only in mmdebstrap: "+p)
		}
	}
	for _, p := range b {
		if !inA[p] {
			diffs = append(diffs, "only in ingot: "+p)
		}
	}
	if len(diffs) > 0 {
		t.Errorf("%d paths differ from mmdebstrap's minbase (beyond the noise list):\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
	t.Logf("paths: ingot %d, mmdebstrap %d (%d removed by the noise list)", len(b), len(a), len(a)-len(b))

	// Beyond the path set: every attribute and every byte of content is the
	// same as mmdebstrap's, mtimes aside, except the files ingot writes
	// differently on purpose.
	expected := map[string]string{
		"etc/apt/sources.list":        "the lock's repository URLs (mmdebstrap writes security.debian.org)",
		"var/lib/apt/extended_states": "sorted by name (apt writes its cache order)",
	}
	ma, mb := readManifest(t, ref), readManifest(t, out)
	var content []string
	for _, d := range images.Compare(ma, mb, images.CompareOptions{IgnoreMtime: true}) {
		if d.Kind == images.Removed && byDesign("/"+d.Path) {
			continue
		}
		if why, ok := expected[d.Path]; ok {
			t.Logf("differs as expected: /%s: %s", d.Path, why)
			continue
		}
		content = append(content, fmt.Sprintf("/%s %s %v", d.Path, d.Kind, d.Keys))
	}
	if len(content) > 0 {
		t.Errorf("%d paths differ from mmdebstrap's in content or attributes:\n%s", len(content), strings.Join(content, "\n"))
	}
}

func readManifest(t *testing.T, tarPath string) *images.Manifest {
	t.Helper()
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := imagetar.Read(context.Background(), f, imagetar.Options{Name: tarPath}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBuildServerReproducible builds examples/server.yaml twice, in
// different build directories: the same digest and byte-identical tars.
func TestBuildServerReproducible(t *testing.T) {
	env, dir := mirrorEnv(t)
	specPath, _ := lockExample(t, env, dir, "server")
	d1 := build(t, env, specPath, filepath.Join(dir, "a.tar.zst"), "--work-dir", filepath.Join(dir, "w1"))
	d2 := build(t, env, specPath, filepath.Join(dir, "b.tar.zst"), "--work-dir", filepath.Join(dir, "w2", "deeper"))
	if d1 != d2 {
		t.Fatalf("two builds of server.yaml: %s and %s", d1, d2)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "a.tar.zst"))
	b, _ := os.ReadFile(filepath.Join(dir, "b.tar.zst"))
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of server.yaml gave different tars")
	}
	root := extract(t, filepath.Join(dir, "a.tar.zst"))
	for _, gone := range []string{"etc/ssh/ssh_host_rsa_key", "etc/ssh/ssh_host_ed25519_key", "var/cache/ldconfig/aux-cache"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); err == nil {
			t.Errorf("%s is in the image", gone)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "usr/sbin/sshd")); err != nil {
		t.Errorf("openssh-server is not installed: %v", err)
	}
}
