package spec

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func TestParseSpec(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; "" means success
	}{
		{"minimal", "name: m\n", ""},
		{"full", `name: server
architectures: [amd64, arm64]
repositories:
  - url: http://deb.debian.org/debian
    suites: [bookworm, bookworm-updates]
    components: [main]
    keyring: /usr/share/keyrings/debian-archive-keyring.gpg
variant: minbase
packages: [openssh-server, python3=3.11.2-1+b1]
exclude: [/usr/share/doc/*, /usr/share/man/*]
keep: [/usr/share/doc/*/copyright]
customize: ["echo hi > /etc/motd"]
source-date-epoch: 1700000000
`, ""},
		{"unknown key", "name: m\npackgaes: [a]\n", "spec.yaml:2: field packgaes not found"},
		{"unknown nested key", "name: m\nrepositories:\n  - url: http://x/\n    suite: [a]\n", "spec.yaml:4: field suite not found"},
		{"wrong type", "name: m\npackages: vim\n", "spec.yaml:2:"},
		{"bad name", "name: Bad Name\n", "spec.yaml:1: name:"},
		{"missing name", "packages: [a]\n", "spec.yaml:1: name:"},
		{"bad package", "name: m\npackages:\n  - ok\n  - Not_OK\n", "spec.yaml:4: packages.1:"},
		{"duplicate package", "name: m\npackages: [aa, aa]\n", "listed twice"},
		{"bad variant", "name: m\nvariant: buildd\n", "spec.yaml:2: variant: unknown variant"},
		{"no keyring", "name: m\nrepositories:\n  - url: http://x/\n    suites: [s]\n", "spec.yaml:3: repositories.0.keyring: a keyring is needed"},
		{"bad url", "name: m\nrepositories:\n  - url: ftp://x/\n    suites: [s]\n    keyring: k.gpg\n", "spec.yaml:3: repositories.0.url"},
		{"no suites", "name: m\nrepositories:\n  - url: http://x/\n    keyring: k.gpg\n", "suites: at least one suite"},
		{"dotdot suite", "name: m\nrepositories:\n  - url: http://x/\n    suites: [../x]\n    keyring: k\n", "spec.yaml:4: repositories.0.suites.0"},
		{"relative glob", "name: m\nexclude: [usr/share/doc]\n", "spec.yaml:2: exclude.0: \"usr/share/doc\": a path glob starts with /"},
		{"bad glob", "name: m\nkeep: [\"/usr/[\"]\n", "keep.0"},
		{"negative epoch", "name: m\nsource-date-epoch: -1\n", "source-date-epoch:"},
		{"bad arch", "name: m\narchitectures: [all]\n", "not a Debian architecture"},
		{"empty", "", "spec.yaml: empty file"},
		{"not a mapping", "- a\n", "top level must be a mapping"},
		{"two documents", "name: m\n---\nname: n\n", "more than one YAML document"},
		{"syntax", "name: [\n", "spec.yaml:"},
		{"empty customize", "name: m\ncustomize: [\" \"]\n", "customize.0: empty command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("spec.yaml", []byte(tc.in))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if len(s.Architectures) == 0 || s.Variant == "" {
					t.Errorf("defaults not applied: %+v", s)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadResolvesPaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "overlay"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "s.yaml")
	os.WriteFile(p, []byte("name: s\noverlay: overlay\nrepositories:\n  - url: file:///srv/repo\n    suites: [s]\n    keyring: keys/k.asc\n"), 0o644)
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Path(s.Repositories[0].Keyring), filepath.Join(dir, "keys/k.asc"); got != want {
		t.Errorf("keyring path %q, want %q", got, want)
	}
	if got := s.Repositories[0].Components; len(got) != 1 || got[0] != "main" {
		t.Errorf("default components %v, want [main]", got)
	}
	if s.Digest() == s.ResolveDigest() || len(s.Digest()) != 64 {
		t.Errorf("digests look wrong: %s %s", s.Digest(), s.ResolveDigest())
	}
	os.WriteFile(p, []byte("name: s\noverlay: missing\n"), 0o644)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "overlay") {
		t.Errorf("missing overlay: err = %v", err)
	}
}

func TestResolveDigestIgnoresBuildOnlyFields(t *testing.T) {
	a, _ := Parse("a", []byte("name: a\npackages: [x1]\n"))
	b, _ := Parse("b", []byte("# comment\nname: b\npackages: [x1]\nexclude: [/usr/share/doc/*]\ncustomize: [true]\n"))
	c, _ := Parse("c", []byte("name: a\npackages: [x2]\n"))
	if a.ResolveDigest() != b.ResolveDigest() {
		t.Error("excludes/customize/name changed the resolve digest")
	}
	if a.ResolveDigest() == c.ResolveDigest() {
		t.Error("packages did not change the resolve digest")
	}
}

func sampleLock() *Lock {
	return &Lock{
		Version:         LockVersion,
		SpecSHA256:      strings.Repeat("a", 64),
		SourceDateEpoch: 1716000000,
		Repositories: []LockedRepository{{
			URL: "http://deb.debian.org/debian", Suite: "bookworm", Components: []string{"main"},
			InReleaseSHA256: strings.Repeat("b", 64), Date: "Sat, 18 May 2024 09:12:34 UTC",
		}},
		Packages: []LockedPackage{
			{Name: "zlib1g", Version: "1:1.2.13.dfsg-1", Architecture: "amd64", Filename: "pool/main/z/zlib/zlib1g_1.2.13.dfsg-1_amd64.deb", Size: 87000, SHA256: strings.Repeat("c", 64), Priority: "required"},
			{Name: "base-files", Version: "12.4", Architecture: "amd64", Filename: "pool/main/b/base-files/base-files_12.4_amd64.deb", Size: 70000, SHA256: strings.Repeat("d", 64), Essential: true, Priority: "required"},
			{Name: "yes", Version: "1.0", Architecture: "all", Filename: "pool/main/y/yes/yes_1.0_all.deb", Size: 1, SHA256: strings.Repeat("e", 64)},
		},
	}
}

func TestLockGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleLock().Write(&buf); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "sample.lock")
	if *update {
		os.WriteFile(golden, buf.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("lock output differs from %s (run with -update):\n%s", golden, buf.Bytes())
	}
	// Round trip: parse and write again gives the same bytes.
	l, err := ParseLock(golden, want)
	if err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := l.Write(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), want) {
		t.Fatalf("round trip changed the lock:\n%s", again.Bytes())
	}
	if got := l.URL(l.Packages[0]); got != "http://deb.debian.org/debian/pool/main/b/base-files/base-files_12.4_amd64.deb" {
		t.Errorf("URL = %s", got)
	}
}

func TestParseLockErrors(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "sample.lock"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, old, new, wantErr string
	}{
		{"unknown key", "version: 1\n", "version: 1\nfoo: 2\n", "x.lock:3: field foo not found"},
		{"version", "version: 1\n", "version: 7\n", "x.lock:2: version: lock version 7"},
		{"bad sha", "sha256: " + strings.Repeat("c", 64), "sha256: " + strings.Repeat("C", 64), "x.lock:14: packages.2.sha256"},
		{"unsafe filename", "pool/main/y/yes/yes_1.0_all.deb", "../../etc/passwd", "x.lock:13: packages.1.filename"},
		{"absolute filename", "pool/main/y/yes/yes_1.0_all.deb", "/etc/passwd", "packages.1.filename"},
		{"repository index", "repository: 0, filename: pool/main/z", "repository: 3, filename: pool/main/z", "packages.2.repository: repository 3 does not exist"},
		{"order", `name: "yes",`, "name: aaa,", "packages.1.name: aaa:all is out of order"},
		{"date", "Sat, 18 May 2024 09:12:34 UTC", "yesterday", "repositories.0.date"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(string(good), tc.old, tc.new, 1)
			if in == string(good) {
				t.Fatalf("test does not change the input: %q not found", tc.old)
			}
			_, err := ParseLock("x.lock", []byte(in))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadDebs(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.deb"), []byte("!<arch>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "s.yaml")
	os.WriteFile(p, []byte("name: s\ndebs:\n  - hello.deb\n"), 0o644)
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Path(s.Debs[0]); got != filepath.Join(dir, "hello.deb") {
		t.Errorf("deb path %q", got)
	}
	without, _ := Parse("t", []byte("name: s\n"))
	if s.ResolveDigest() == without.ResolveDigest() {
		t.Error("adding a local .deb leaves the resolve digest as it was")
	}
	for text, want := range map[string]string{
		"name: s\ndebs:\n  - hello.deb\n  - gone.deb\n": "s.yaml:4: debs.1: gone.deb: ",
		"name: s\ndebs:\n  - hello.txt\n":               "s.yaml:3: debs.0: \"hello.txt\" is not the path of a .deb file",
		"name: s\ndebs: [hello.deb, hello.deb]\n":       "debs.1: \"hello.deb\" listed twice",
	} {
		os.WriteFile(p, []byte(text), 0o644)
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", text, err, want)
		}
	}
}

func TestLockLocalPackage(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "sample.lock"))
	if err != nil {
		t.Fatal(err)
	}
	local := strings.Replace(string(good), "repository: 0, filename: pool/main/z", "repository: -1, filename: \"\", local: z.deb, x: pool/main/z", 1)
	if _, err := ParseLock("x.lock", []byte(local)); err == nil {
		t.Fatal("unknown key accepted") // sanity: the replacement must hit
	}
	l, err := ParseLock("x.lock", good)
	if err != nil {
		t.Fatal(err)
	}
	p := &l.Packages[len(l.Packages)-1]
	p.Repository, p.Filename, p.Local = -1, "", "debs/"+p.Name+".deb"
	var buf strings.Builder
	if err := l.Write(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := ParseLock("x.lock", []byte(buf.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if q := back.Packages[len(back.Packages)-1]; q.Local != p.Local || back.URL(q) != "" {
		t.Errorf("local package read back as %+v", q)
	}
	p.Filename = "pool/x.deb"
	if err := l.Validate(); err == nil {
		t.Error("a local package with a repository filename accepted")
	}
}
