package rpm2deb

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ingotfleet/ingot/internal/testenv"
)

var rpmDir string // test RPMs, built once per test binary

func TestMain(m *testing.M) {
	flag.Parse()
	d, err := os.MkdirTemp("", "rpm2deb-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	rpmDir = d
	code := m.Run()
	_ = os.RemoveAll(d) // scratch
	os.Exit(code)
}

// payloadDefines are the rpmbuild payload settings the compression test
// builds tiny.spec with.
var payloadDefines = map[string]string{
	"gzip":  "w9.gzdio",
	"bzip2": "w9.bzdio",
	"xz":    "w6.xzdio",
	"lzma":  "w6.lzdio",
	"zstd":  "w19.zstdio",
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// buildRPM builds testdata/specs/<spec>.spec with rpmbuild (once per
// test binary and variant) and returns the .rpm's path. payload, if not
// "", overrides the spec's payload compression.
func buildRPM(t testing.TB, spec, payload string) string {
	t.Helper()
	testenv.RequireTool(t, "rpmbuild", "rpm")
	key := spec + "/" + payload
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[key]; ok {
		return p
	}
	top := filepath.Join(rpmDir, strings.ReplaceAll(key, "/", "_"))
	args := []string{"-bb", "--quiet", "--define", "_topdir " + top}
	if payload != "" {
		args = append(args, "--define", "_binary_payload "+payloadDefines[payload])
	}
	specPath, err := filepath.Abs(filepath.Join("testdata", "specs", spec+".spec"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("rpmbuild", append(args, specPath)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	matches, _ := filepath.Glob(filepath.Join(top, "RPMS", "*", "*.rpm"))
	if len(matches) != 1 {
		t.Fatalf("rpmbuild %s: want one RPM, found %v", spec, matches)
	}
	built[key] = matches[0]
	return matches[0]
}

// run runs a command and returns its stdout, failing the test on error.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s%s", cmd, err, out.String(), errb.String())
	}
	return out.String()
}

// debianRootDir is the reference Debian root (mmdebstrap --variant=minbase
// bookworm), shared by every test: never change it; copy it first.
func debianRootDir(t testing.TB) string {
	t.Helper()
	return testenv.DebianRootDir(t)
}

// debFromMirror returns a Debian package downloaded with apt-get
// download (cached next to the reference root).
func debFromMirror(t testing.TB, pkg string) string {
	t.Helper()
	dir := filepath.Join(testenv.CacheDir(t), "rpm2deb-debs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb")); len(m) > 0 {
		return m[0]
	}
	cmd := exec.Command("apt-get", "download", pkg)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(m) == 0 {
		t.Fatalf("apt-get download %s left no .deb in %s", pkg, dir)
	}
	return m[0]
}
