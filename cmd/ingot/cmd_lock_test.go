package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/debrepo/debrepotest"
	"github.com/ingotfleet/ingot/builder/spec"
	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// lockRun runs ingot in-process and returns exit code, stdout, stderr.
func lockRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &cli.App{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Args: args, Getenv: func(string) string { return "" }}
	code := a.Execute(context.Background())
	return code, stdout.String(), stderr.String()
}

// lockTestRepo builds a small signed repository with a base set, a
// virtual package, alternatives and two versions of a library.
func lockTestRepo(t *testing.T) *debrepotest.Repo {
	t.Helper()
	debs := t.TempDir()
	var files []string
	for _, d := range []debrepotest.Deb{
		{Package: "base-files", Version: "13", Essential: true, Priority: "required", PreDepends: "libc (>= 2)"},
		{Package: "libc", Version: "2.36-9", Priority: "required"},
		{Package: "mawk", Version: "1.3.4", Priority: "required", Provides: "awk"},
		{Package: "tool", Version: "1:1.0-1", Depends: "awk, libtool (>= 2) | libtool-compat, default-mta | mail-transport-agent"},
		{Package: "libtool", Version: "1.0"},
		{Package: "libtool", Version: "2.1"},
		{Package: "exim", Version: "4.96", Provides: "mail-transport-agent"},
		{Package: "unrelated", Version: "1.0", Priority: "optional"},
		{Package: "docs", Version: "1.0", Architecture: "all"},
	} {
		files = append(files, debrepotest.BuildDeb(t, debs, d))
	}
	repo := debrepotest.NewRepo(t, t.TempDir(), debrepotest.Options{Suite: "stable"}, files...)
	repo.Serve(t)
	return repo
}

func writeSpec(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func lockedNames(t *testing.T, path string) []string {
	t.Helper()
	l, err := spec.LoadLock(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range l.Packages {
		names = append(names, p.Name+"="+p.Version)
	}
	return names
}

func TestLockLocalRepository(t *testing.T) {
	repo := lockTestRepo(t)
	dir := t.TempDir()
	specPath := writeSpec(t, dir, fmt.Sprintf(`name: test
repositories:
  - url: %s
    suites: [stable]
    keyring: %s
packages: [tool, docs]
`, repo.URL, repo.Key.Armored))
	code, stdout, stderr := lockRun(t, "lock", specPath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lockPath := filepath.Join(dir, "spec.lock")
	if !strings.Contains(stdout, "locked 7 packages") || !strings.Contains(stdout, lockPath) {
		t.Errorf("stdout: %s", stdout)
	}
	want := []string{"base-files=13", "docs=1.0", "exim=4.96", "libc=2.36-9", "libtool=2.1", "mawk=1.3.4", "tool=1:1.0-1"}
	if got := lockedNames(t, lockPath); !slices.Equal(got, want) {
		t.Fatalf("locked %v\nwant   %v", got, want)
	}
	l, _ := spec.LoadLock(lockPath)
	s, _ := spec.Load(specPath)
	if l.SpecSHA256 != s.ResolveDigest() || l.SourceDateEpoch != debrepotest.DefaultDate.Unix() {
		t.Errorf("lock header: spec %s epoch %d", l.SpecSHA256, l.SourceDateEpoch)
	}
	// Locking again gives the same bytes.
	first, _ := os.ReadFile(lockPath)
	if code, _, stderr := lockRun(t, "lock", specPath, "-o", filepath.Join(dir, "again.lock")); code != 0 {
		t.Fatal(stderr)
	}
	again, _ := os.ReadFile(filepath.Join(dir, "again.lock"))
	if !bytes.Equal(first, again) {
		t.Error("two locks of the same spec and repository differ")
	}
}

func TestLockHostSources(t *testing.T) {
	repo := lockTestRepo(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/apt/sources.list.d"), 0o755)
	os.MkdirAll(filepath.Join(root, "keys"), 0o755)
	key, _ := os.ReadFile(repo.Key.Keyring)
	os.WriteFile(filepath.Join(root, "keys/test.gpg"), key, 0o644)
	os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/test.sources"), []byte(
		"Types: deb\nURIs: "+repo.URL+"\nSuites: stable\nComponents: main\nSigned-By: /keys/test.gpg\n"), 0o644)
	dir := t.TempDir()
	specPath := writeSpec(t, dir, "name: host\nvariant: essential\n")
	code, _, stderr := lockRun(t, "lock", specPath, "--apt-root", root, "-o", filepath.Join(dir, "out.lock"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got, want := lockedNames(t, filepath.Join(dir, "out.lock")), []string{"base-files=13", "libc=2.36-9"}; !slices.Equal(got, want) {
		t.Fatalf("locked %v, want %v", got, want)
	}
}

func TestLockRefuses(t *testing.T) {
	repo := lockTestRepo(t)
	other := debrepotest.NewKey(t, "not the repository's key")
	for _, tc := range []struct {
		name     string
		spec     string
		wantCode int
		wantErr  string
	}{
		{"wrong keyring", fmt.Sprintf("name: t\nrepositories:\n  - url: %s\n    suites: [stable]\n    keyring: %s\n", repo.URL, other.Keyring),
			2, "dists/stable/InRelease: signed by no key of the keyring"},
		{"unknown package", fmt.Sprintf("name: t\nrepositories:\n  - url: %s\n    suites: [stable]\n    keyring: %s\npackages: [nope]\n", repo.URL, repo.Key.Keyring),
			2, "package nope: unsatisfiable: not found in any repository"},
		{"unknown key in spec", "name: t\npackages: [a]\nvariants: x\n", 2, "spec.yaml:3: field variants not found"},
		{"missing suite", fmt.Sprintf("name: t\nrepositories:\n  - url: %s\n    suites: [nosuch]\n    keyring: %s\n", repo.URL, repo.Key.Keyring),
			2, "dists/nosuch/InRelease: not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			specPath := writeSpec(t, dir, tc.spec)
			code, _, stderr := lockRun(t, "lock", specPath)
			if code != tc.wantCode || !strings.Contains(stderr, tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tc.wantCode, tc.wantErr)
			}
			if _, err := os.Stat(filepath.Join(dir, "spec.lock")); err == nil {
				t.Error("a lock file was written despite the error")
			}
		})
	}
	if code, _, _ := lockRun(t, "lock"); code != cli.ExitUsage {
		t.Errorf("lock without SPEC: exit %d, want %d", code, cli.ExitUsage)
	}
}

// TestLockDebianMirrorMatchesMmdebstrap locks examples/minimal.yaml
// against the Debian mirror, in each variant, and checks that the package
// set equals what `mmdebstrap --variant=V` installs from the same suites.
func TestLockDebianMirrorMatchesMmdebstrap(t *testing.T) {
	testenv.RequireTool(t, "mmdebstrap", "mmdebstrap")
	testenv.RequireRoot(t)
	example, err := os.ReadFile("../../examples/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, variant := range []string{spec.VariantEssential, spec.VariantMinbase, spec.VariantImportant, spec.VariantStandard} {
		t.Run(variant, func(t *testing.T) {
			t.Parallel() // mostly waiting on the mirror and apt
			dir := t.TempDir()
			specPath := writeSpec(t, dir, strings.Replace(string(example), "variant: minbase", "variant: "+variant, 1))
			lockPath := filepath.Join(dir, "spec.lock")
			code, _, stderr := lockRun(t, "lock", specPath, "-o", lockPath)
			if code != 0 {
				t.Fatalf("ingot lock: exit %d: %s", code, stderr)
			}
			l, err := spec.LoadLock(lockPath)
			if err != nil {
				t.Fatal(err)
			}
			var sources []string
			for _, r := range l.Repositories {
				sources = append(sources, fmt.Sprintf("deb %s %s %s", r.URL, r.Suite, strings.Join(r.Components, " ")))
			}
			args := append([]string{"--verbose", "--variant=" + variant, "--simulate", "bookworm", filepath.Join(dir, "mm.tar")}, sources...)
			out, err := exec.Command("mmdebstrap", args...).CombinedOutput()
			if err != nil {
				t.Fatalf("mmdebstrap %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			mm := map[string]bool{}
			for _, line := range strings.Split(string(out), "\n") {
				// Inst libc6 (2.36-9+deb12u10 Debian:12.11/stable [amd64]) []
				if f := strings.Fields(line); len(f) >= 3 && f[0] == "Inst" {
					mm[f[1]+"="+strings.TrimPrefix(f[2], "(")] = true
				}
			}
			ours := map[string]bool{}
			for _, n := range lockedNames(t, lockPath) {
				ours[n] = true
			}
			var diffs []string
			for n := range mm {
				if !ours[n] {
					diffs = append(diffs, "only mmdebstrap: "+n)
				}
			}
			for n := range ours {
				if !mm[n] {
					diffs = append(diffs, "only ingot:      "+n)
				}
			}
			slices.Sort(diffs)
			if len(mm) == 0 || len(diffs) > 0 {
				t.Fatalf("ingot's %s set (%d packages) differs from mmdebstrap's (%d):\n%s", variant, len(ours), len(mm), strings.Join(diffs, "\n"))
			}
			t.Logf("ingot lock and mmdebstrap --variant=%s agree on %d packages", variant, len(ours))
		})
	}
}

// TestLockServerFromHostAptSources locks examples/server.yaml, which names
// no repository, from the build host's apt sources and keyrings: every
// requested package is locked, on top of the minbase set.
func TestLockServerFromHostAptSources(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := lockRun(t, "lock", "../../examples/server.yaml", "-o", filepath.Join(dir, "server.lock"))
	if code != 0 {
		t.Fatalf("ingot lock: exit %d: %s", code, stderr)
	}
	s, err := spec.Load("../../examples/server.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l, err := spec.LoadLock(filepath.Join(dir, "server.lock"))
	if err != nil {
		t.Fatal(err)
	}
	locked := map[string]spec.LockedPackage{}
	for _, p := range l.Packages {
		locked[p.Name] = p
	}
	for _, want := range append([]string{"base-files", "coreutils", "dpkg", "apt", "libc6"}, s.Packages...) {
		if _, ok := locked[want]; !ok {
			t.Errorf("%s is not in the lock", want)
		}
	}
	if len(l.Repositories) == 0 || l.SourceDateEpoch == 0 {
		t.Errorf("lock has %d repositories, epoch %d", len(l.Repositories), l.SourceDateEpoch)
	}
	t.Logf("locked %d packages from %d suites of the host's apt sources", len(l.Packages), len(l.Repositories))
}

// TestWriteFileAtomicKeepsDevices checks that writing a lock to a device
// (-o /dev/null) writes into it rather than renaming a file over it.

// TestLockCheck: --check says a fresh lock is up to date (exit 0), and
// lists a new version in the repository as a change (exit 1) without
// touching the lock file.
func TestLockCheck(t *testing.T) {
	debDir := t.TempDir()
	debs := []string{
		debrepotest.BuildDeb(t, debDir, debrepotest.Deb{Package: "base", Version: "1", Essential: true, Priority: "required", Depends: "lib"}),
		debrepotest.BuildDeb(t, debDir, debrepotest.Deb{Package: "lib", Version: "1.0"}),
		debrepotest.BuildDeb(t, debDir, debrepotest.Deb{Package: "old", Version: "1.0", Priority: "required"}),
	}
	repoDir := t.TempDir()
	repo := debrepotest.NewRepo(t, repoDir, debrepotest.Options{}, debs...)
	dir := t.TempDir()
	specPath := writeSpec(t, dir, fmt.Sprintf("name: t\nrepositories:\n  - url: %s\n    suites: [stable]\n    keyring: %s\n", repo.URL, repo.Key.Keyring))
	if code, _, stderr := lockRun(t, "lock", specPath); code != 0 {
		t.Fatal(stderr)
	}
	lockPath := filepath.Join(dir, "spec.lock")
	before, _ := os.ReadFile(lockPath)
	if code, stdout, stderr := lockRun(t, "lock", "--check", specPath); code != 0 || !strings.Contains(stdout, "is up to date (3 packages)") {
		t.Fatalf("fresh lock: exit %d, %s%s", code, stdout, stderr)
	}
	// The repository moves on: lib 1.1 replaces 1.0, "old" goes, "new" comes.
	os.RemoveAll(filepath.Join(repoDir, "pool"))
	newDebs := []string{
		debs[0],
		debrepotest.BuildDeb(t, debDir, debrepotest.Deb{Package: "lib", Version: "1.1"}),
		debrepotest.BuildDeb(t, debDir, debrepotest.Deb{Package: "new", Version: "2.0", Priority: "required"}),
	}
	debrepotest.NewRepo(t, repoDir, debrepotest.Options{Key: repo.Key}, newDebs...)
	code, stdout, _ := lockRun(t, "lock", "--check", specPath)
	want := "~ lib 1.0 -> 1.1 amd64\n+ new 2.0 amd64\n- old 1.0 amd64\n"
	if code != cli.ExitNegative || stdout != want {
		t.Fatalf("after an update: exit %d, stdout\n%s\nwant exit 1 and\n%s", code, stdout, want)
	}
	if after, _ := os.ReadFile(lockPath); !bytes.Equal(before, after) {
		t.Error("--check changed the lock file")
	}
}
