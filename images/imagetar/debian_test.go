package imagetar

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// debianFixture is the reference Debian root read both ways, shared by
// the tests of this file (reading it costs seconds).
type debianFixture struct {
	tarPath, root string
	fromTar       *images.Manifest
	fromDir       *images.Manifest
	tarBytes      []byte // WriteTar of fromTar, content from the mmdebstrap tar
	dirBytes      []byte // WriteTar of fromDir, content from the extracted root
}

var (
	debianOnce sync.Once
	debianFix  *debianFixture
	debianErr  error
)

func debian(t *testing.T) *debianFixture {
	t.Helper()
	tarPath := testenv.DebianRootTar(t)
	root := testenv.DebianRootDir(t)
	debianOnce.Do(func() { debianFix, debianErr = loadDebian(tarPath, root) })
	if debianErr != nil {
		t.Fatal(debianErr)
	}
	return debianFix
}

func loadDebian(tarPath, root string) (*debianFixture, error) {
	ctx := context.Background()
	fx := &debianFixture{tarPath: tarPath, root: root}

	// Read the tar, keeping every file's content by hash, as the store would.
	contents := map[images.Digest][]byte{}
	f, err := os.Open(tarPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fx.fromTar, err = Read(ctx, f, Options{Name: tarPath}, func(e *images.Entry, r io.Reader) error {
		b, err := io.ReadAll(r)
		contents[sha256.Sum256(b)] = b
		return err
	})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = Write(ctx, &buf, fx.fromTar, func(ctx context.Context, e *images.Entry) (io.ReadCloser, error) {
		b, ok := contents[e.SHA256]
		if !ok {
			return nil, fmt.Errorf("no content %s", e.SHA256)
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	})
	if err != nil {
		return nil, err
	}
	fx.tarBytes = buf.Bytes()

	fx.fromDir, err = images.WalkDir(ctx, root, images.WalkOptions{}, nil)
	if err != nil {
		return nil, err
	}
	var buf2 bytes.Buffer
	if err := Write(ctx, &buf2, fx.fromDir, images.DirOpener(root)); err != nil {
		return nil, err
	}
	fx.dirBytes = buf2.Bytes()
	return fx, nil
}

// TestDebianRoundTrip: a real Debian root read from mmdebstrap's tar and
// from its extracted tree gives the same manifest and, written back by
// WriteTar, the same bytes.
func TestDebianRoundTrip(t *testing.T) {
	fx := debian(t)
	if n := len(fx.fromTar.Entries); n < 5000 {
		t.Fatalf("the reference root has only %d entries", n)
	}
	if d := images.Compare(fx.fromTar, fx.fromDir, images.CompareOptions{}); len(d) > 0 {
		for _, x := range d[:min(len(d), 20)] {
			t.Errorf("%s %s %v\n  tar: %+v\n  dir: %+v", x.Kind, x.Path, x.Keys, x.Old, x.New)
		}
		t.Fatalf("%d paths differ between the tar and the extracted root", len(d))
	}
	if !bytes.Equal(fx.fromTar.Bytes(), fx.fromDir.Bytes()) {
		t.Fatal("manifests compare equal but print differently")
	}
	if !bytes.Equal(fx.tarBytes, fx.dirBytes) {
		t.Fatalf("WriteTar from the tar (%d bytes) and from the tree (%d bytes) differ", len(fx.tarBytes), len(fx.dirBytes))
	}
	// And the written tar reads back to the same manifest.
	m, err := Read(t.Context(), bytes.NewReader(fx.tarBytes), Options{Name: "exported"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Bytes(), fx.fromTar.Bytes()) {
		t.Fatal("the exported tar reads back to another manifest")
	}
	// Names come from the image's own etc/passwd: Debian's _apt is 42.
	if e := fx.fromTar.Lookup("var/cache/apt/archives/partial"); e == nil || e.Uname != "_apt" {
		t.Errorf("var/cache/apt/archives/partial: want owner _apt from the image's etc/passwd, got %+v", e)
	}
}

// TestDebianMtree: the mtree form of the Debian manifest passes NetBSD
// mtree against the extracted root, and bsdtar reads it.
func TestDebianMtree(t *testing.T) {
	mtree := testenv.RequireTool(t, "mtree", "mtree-netbsd")
	bsdtar := testenv.RequireTool(t, "bsdtar", "libarchive-tools")
	fx := debian(t)
	var spec bytes.Buffer
	if err := fx.fromTar.Write(&spec, images.FormatMtree); err != nil {
		t.Fatal(err)
	}
	specFile := t.TempDir() + "/spec"
	if err := os.WriteFile(specFile, spec.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	// Debian's NetBSD mtree takes no "-f -"; without -f it reads the spec
	// from stdin, which is the same check.
	cmd := exec.Command(mtree, "-p", fx.root)
	cmd.Stdin = bytes.NewReader(spec.Bytes())
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("%s: %v\n%s", cmd, err, firstLines(out, 40))
	}

	// A changed tree must be noticed: the check above can fail.
	changed := spec.Bytes()
	changed = bytes.Replace(changed, []byte("./etc/debian_version type=file mode=0644"), []byte("./etc/debian_version type=file mode=0600"), 1)
	if bytes.Equal(changed, spec.Bytes()) {
		t.Fatal("etc/debian_version with mode 0644 not found in the spec")
	}
	cmd = exec.Command(mtree, "-p", fx.root)
	cmd.Stdin = bytes.NewReader(changed)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "debian_version") {
		t.Fatalf("mtree did not notice a changed mode: %v\n%s", err, firstLines(out, 10))
	}

	// bsdtar reads the spec as an archive: it lists every entry.
	cmd = exec.Command(bsdtar, "-tf", specFile)
	out, err = cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	if got, want := bytes.Count(out, []byte("\n")), len(fx.fromTar.Entries); got != want {
		t.Fatalf("bsdtar -tf lists %d entries, the manifest has %d", got, want)
	}
	// And builds a tar from it, reading content from the tree.
	cmd = exec.Command(bsdtar, "-cf", "/dev/null", "@"+specFile)
	cmd.Dir = fx.root
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("%s: %v\n%s", cmd, err, firstLines(out, 20))
	}
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	if len(lines) > n {
		lines[n] = "…"
	}
	return strings.Join(lines, "\n")
}
