package debrepotest

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ulikunitz/xz"

	"github.com/ingotfleet/ingot/internal/testenv"
)

// Deb describes a binary package to build.
type Deb struct {
	Package      string
	Version      string
	Architecture string // default amd64
	Essential    bool
	Priority     string // default optional
	MultiArch    string
	PreDepends   string
	Depends      string
	Provides     string
	Conflicts    string
	Breaks       string
	// Files maps paths (relative, such as "usr/bin/hello") to content;
	// a path ending in "/" is a directory.
	Files map[string]string
	// Scripts maps maintainer script names (preinst, postinst, prerm,
	// postrm) to their text.
	Scripts map[string]string
	// Conffiles lists absolute conffile paths.
	Conffiles []string
	// Compression is dpkg-deb's -Z (gzip, xz, zstd, none); default gzip.
	Compression string
}

// BuildDeb builds d with dpkg-deb into dir and returns the .deb's path.
func BuildDeb(t testing.TB, dir string, d Deb) string {
	t.Helper()
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	if d.Architecture == "" {
		d.Architecture = "amd64"
	}
	if d.Priority == "" {
		d.Priority = "optional"
	}
	if d.Compression == "" {
		d.Compression = "gzip"
	}
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755))
	var ctl strings.Builder
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&ctl, "%s: %s\n", k, v)
		}
	}
	field("Package", d.Package)
	field("Version", d.Version)
	field("Architecture", d.Architecture)
	field("Maintainer", "ingot tests <tests@ingot.invalid>")
	if d.Essential {
		field("Essential", "yes")
	}
	field("Priority", d.Priority)
	field("Section", "misc")
	field("Multi-Arch", d.MultiArch)
	field("Pre-Depends", d.PreDepends)
	field("Depends", d.Depends)
	field("Provides", d.Provides)
	field("Conflicts", d.Conflicts)
	field("Breaks", d.Breaks)
	field("Description", "test package "+d.Package+"\n made by ingot's debrepotest.")
	must(t, os.WriteFile(filepath.Join(root, "DEBIAN", "control"), []byte(ctl.String()), 0o644))
	for _, name := range slices.Sorted(maps.Keys(d.Scripts)) {
		must(t, os.WriteFile(filepath.Join(root, "DEBIAN", name), []byte(d.Scripts[name]), 0o755))
	}
	if len(d.Conffiles) > 0 {
		must(t, os.WriteFile(filepath.Join(root, "DEBIAN", "conffiles"), []byte(strings.Join(d.Conffiles, "\n")+"\n"), 0o644))
	}
	for _, p := range slices.Sorted(maps.Keys(d.Files)) {
		full := filepath.Join(root, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			must(t, os.MkdirAll(full, 0o755))
			continue
		}
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		must(t, os.WriteFile(full, []byte(d.Files[p]), 0o644))
	}
	out := filepath.Join(dir, fmt.Sprintf("%s_%s_%s.deb", d.Package, strings.ReplaceAll(d.Version, ":", "%3a"), d.Architecture))
	run(t, nil, "", "dpkg-deb", "--root-owner-group", "-Z"+d.Compression, "--build", root, out)
	return out
}

// Key is a throwaway gpg signing key in its own GNUPGHOME.
type Key struct {
	Home        string
	Fingerprint string
	Keyring     string // binary public keyring (.gpg)
	Armored     string // armored public keyring (.asc)
}

// NewKey generates an ed25519 signing key with gpg. Its GNUPGHOME lives
// under a short temporary path (gpg-agent's socket path is limited) and is
// removed, agent stopped, when the test ends.
func NewKey(t testing.TB, name string) *Key {
	t.Helper()
	testenv.RequireTool(t, "gpg", "gnupg")
	home, err := os.MkdirTemp("", "gpg")
	must(t, err)
	must(t, os.Chmod(home, 0o700))
	t.Cleanup(func() {
		// Best effort: an agent already gone or a leftover temporary
		// directory does not make the test wrong.
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		_ = os.RemoveAll(home)
	})
	return genKey(t, home, name, "never")
}

// NewKeyInHome generates another key in k's GNUPGHOME, expiring as gpg's
// --quick-gen-key reads expire ("never", "1d", "2y"), so that ClearSignBy
// can sign with both.
func (k *Key) NewKeyInHome(t testing.TB, name, expire string) *Key {
	t.Helper()
	return genKey(t, k.Home, name, expire)
}

func genKey(t testing.TB, home, name, expire string) *Key {
	t.Helper()
	env := []string{"GNUPGHOME=" + home}
	uid := name + " <" + strings.ReplaceAll(strings.ToLower(name), " ", "-") + "@ingot.invalid>"
	run(t, env, "", "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", expire)
	out := run(t, env, "", "gpg", "--batch", "--with-colons", "--list-secret-keys", uid)
	k := &Key{Home: home}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, ":"); len(f) > 9 && f[0] == "fpr" {
			k.Fingerprint = f[9]
			break
		}
	}
	if k.Fingerprint == "" {
		t.Fatalf("gpg: no fingerprint in %q", out)
	}
	k.Keyring = filepath.Join(home, k.Fingerprint+".gpg")
	k.Armored = filepath.Join(home, k.Fingerprint+".asc")
	run(t, env, "", "gpg", "--batch", "--yes", "--output", k.Keyring, "--export", k.Fingerprint)
	run(t, env, "", "gpg", "--batch", "--yes", "--armor", "--output", k.Armored, "--export", k.Fingerprint)
	return k
}

// ClearSign writes in, clear-signed with k, to out.
func (k *Key) ClearSign(t testing.TB, in, out string) {
	t.Helper()
	run(t, []string{"GNUPGHOME=" + k.Home}, "", "gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "",
		"--digest-algo", "SHA512", "--local-user", k.Fingerprint, "--clearsign", "--output", out, in)
}

// ClearSignBy writes in, clear-signed by every key (all in one
// GNUPGHOME, see NewKeyInHome), to out: one signature packet per key, in
// order, as Debian signs its InRelease files.
func ClearSignBy(t testing.TB, in, out string, keys ...*Key) {
	t.Helper()
	args := []string{"--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", "--digest-algo", "SHA512"}
	for _, k := range keys {
		args = append(args, "--local-user", k.Fingerprint+"!")
	}
	args = append(args, "--clearsign", "--output", out, in)
	run(t, []string{"GNUPGHOME=" + keys[0].Home}, "", "gpg", args...)
}

// DetachSign writes an armored detached signature of in to out.
func (k *Key) DetachSign(t testing.TB, in, out string) {
	t.Helper()
	run(t, []string{"GNUPGHOME=" + k.Home}, "", "gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "",
		"--digest-algo", "SHA512", "--local-user", k.Fingerprint, "--armor", "--detach-sign", "--output", out, in)
}

// Options shape a repository suite.
type Options struct {
	Suite         string   // default "stable"
	Components    []string // default [main]; every .deb goes into the first
	Architectures []string // default [amd64]
	Date          time.Time
	ValidUntil    time.Time // zero: no Valid-Until field
	Key           *Key      // nil: a new key
	AcquireByHash bool
	// DetachedOnly writes Release.gpg (a detached signature) and no
	// InRelease, as older repositories do.
	DetachedOnly bool
}

// Repo is a signed repository on disk.
type Repo struct {
	Dir   string
	Suite string
	Key   *Key
	URL   string // file:// URL of Dir; Serve sets an http URL
}

// DefaultDate is the Date of a test Release file unless Options say otherwise.
var DefaultDate = time.Date(2024, 5, 18, 9, 12, 34, 0, time.UTC)

// NewRepo copies debs into dir/pool/COMPONENT/ and writes a signed suite:
// dists/SUITE/COMPONENT/binary-ARCH/Packages{,.gz,.xz} by dpkg-scanpackages,
// dists/SUITE/Release with sha256 hashes, and dists/SUITE/InRelease signed
// by the key. Several suites may share dir (call NewRepo again with
// another Suite and the same Key).
func NewRepo(t testing.TB, dir string, opts Options, debs ...string) *Repo {
	t.Helper()
	testenv.RequireTool(t, "dpkg-scanpackages", "dpkg-dev")
	if opts.Suite == "" {
		opts.Suite = "stable"
	}
	if len(opts.Components) == 0 {
		opts.Components = []string{"main"}
	}
	if len(opts.Architectures) == 0 {
		opts.Architectures = []string{"amd64"}
	}
	if opts.Date.IsZero() {
		opts.Date = DefaultDate
	}
	if opts.Key == nil {
		opts.Key = NewKey(t, "ingot test repository")
	}
	pool := filepath.Join("pool", opts.Suite, opts.Components[0])
	must(t, os.MkdirAll(filepath.Join(dir, pool), 0o755))
	for _, d := range debs {
		data, err := os.ReadFile(d)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, pool, filepath.Base(d)), data, 0o644))
	}
	dists := filepath.Join(dir, "dists", opts.Suite)
	var files []string
	for i, comp := range opts.Components {
		for _, arch := range opts.Architectures {
			rel := comp + "/binary-" + arch + "/Packages"
			var pkgs string
			if i == 0 {
				pkgs = run(t, nil, dir, "dpkg-scanpackages", "--multiversion", "--arch", arch, pool, "/dev/null")
			}
			WriteIndex(t, dists, rel, []byte(pkgs))
			files = append(files, rel, rel+".gz", rel+".xz")
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Origin: ingot-test\nLabel: ingot-test\nSuite: %s\nCodename: %s\n", opts.Suite, opts.Suite)
	fmt.Fprintf(&b, "Date: %s\n", opts.Date.UTC().Format(time.RFC1123))
	if !opts.ValidUntil.IsZero() {
		fmt.Fprintf(&b, "Valid-Until: %s\n", opts.ValidUntil.UTC().Format(time.RFC1123))
	}
	if opts.AcquireByHash {
		b.WriteString("Acquire-By-Hash: yes\n")
	}
	fmt.Fprintf(&b, "Architectures: %s\nComponents: %s\nDescription: ingot test repository\nSHA256:\n",
		strings.Join(opts.Architectures, " "), strings.Join(opts.Components, " "))
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dists, f))
		must(t, err)
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, " %s %8d %s\n", hex.EncodeToString(sum[:]), len(data), f)
		if opts.AcquireByHash {
			bh := filepath.Join(dists, filepath.Dir(f), "by-hash", "SHA256", hex.EncodeToString(sum[:]))
			must(t, os.MkdirAll(filepath.Dir(bh), 0o755))
			must(t, os.WriteFile(bh, data, 0o644))
		}
	}
	must(t, os.WriteFile(filepath.Join(dists, "Release"), []byte(b.String()), 0o644))
	if opts.DetachedOnly {
		opts.Key.DetachSign(t, filepath.Join(dists, "Release"), filepath.Join(dists, "Release.gpg"))
	} else {
		opts.Key.ClearSign(t, filepath.Join(dists, "Release"), filepath.Join(dists, "InRelease"))
	}
	abs, err := filepath.Abs(dir)
	must(t, err)
	return &Repo{Dir: abs, Suite: opts.Suite, Key: opts.Key, URL: "file://" + abs}
}

// WriteIndex writes an index file and its .gz and .xz forms below dists.
func WriteIndex(t testing.TB, dists, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(dists, filepath.FromSlash(rel))
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, data, 0o644))
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	_, err := zw.Write(data)
	must(t, err)
	must(t, zw.Close())
	must(t, os.WriteFile(p+".gz", gz.Bytes(), 0o644))
	var xzb bytes.Buffer
	xw, err := xz.NewWriter(&xzb)
	must(t, err)
	_, err = xw.Write(data)
	must(t, err)
	must(t, xw.Close())
	must(t, os.WriteFile(p+".xz", xzb.Bytes(), 0o644))
}

// Serve serves the repository over HTTP for the rest of the test and sets
// r.URL to the server's address. Range requests work (http.FileServer).
func (r *Repo) Serve(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(r.Dir)))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return srv.URL
}

// InRelease is the path of the suite's InRelease file.
func (r *Repo) InRelease() string { return filepath.Join(r.Dir, "dists", r.Suite, "InRelease") }

// Resign rewrites InRelease from the current Release file with key.
func (r *Repo) Resign(t testing.TB, key *Key) {
	t.Helper()
	dists := filepath.Join(r.Dir, "dists", r.Suite)
	key.ClearSign(t, filepath.Join(dists, "Release"), filepath.Join(dists, "InRelease"))
}

func run(t testing.TB, env []string, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
