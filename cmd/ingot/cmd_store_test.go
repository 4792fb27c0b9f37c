package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/internal/cli"
)

// ingot store migrate converts a v1 store in place: the image keeps its
// digest and exports the same bytes; a second run has nothing to do.
func TestStoreMigrate(t *testing.T) {
	work := t.TempDir()
	sdir := filepath.Join(work, "store")
	os.MkdirAll(sdir, 0o755)
	writeFile(t, filepath.Join(sdir, "ingot-store"), []byte("ingot store v1\n")) // as an older ingot made it
	big := strings.Repeat("0123456789abcdef", 64<<10)
	tarA := writeFile(t, filepath.Join(work, "a.tar"), tarOf(t,
		tentry{name: "etc/", typ: tar.TypeDir},
		tentry{name: "etc/hostname", typ: tar.TypeReg, body: "a\n"},
		tentry{name: "usr/", typ: tar.TypeDir},
		tentry{name: "usr/big", typ: tar.TypeReg, body: big},
	))
	code, out, errOut := runIn(t, sdir, nil, "image", "import", tarA, "--name", "m:a")
	if code != cli.ExitOK {
		t.Fatalf("import: exit %d\n%s", code, errOut)
	}
	digest := strings.TrimSpace(out)
	if ents, _ := os.ReadDir(filepath.Join(sdir, "packs")); len(ents) != 0 {
		t.Fatal("an import into a v1 store wrote packs")
	}
	export := func(name string) []byte {
		t.Helper()
		p := filepath.Join(work, name)
		if code, _, errOut := runIn(t, sdir, nil, "image", "export", "m:a", "-o", p); code != cli.ExitOK {
			t.Fatalf("export: exit %d\n%s", code, errOut)
		}
		b, _ := os.ReadFile(p)
		return b
	}
	before := export("before.tar.zst")

	code, out, errOut = runApp(t, nil, "store", "migrate", sdir)
	if code != cli.ExitOK || !strings.Contains(out, "layout v1 → v2") {
		t.Fatalf("store migrate: exit %d, %q\n%s", code, out, errOut)
	}
	if m, _ := os.ReadFile(filepath.Join(sdir, "ingot-store")); string(m) != "ingot store v2\n" {
		t.Errorf("marker after migrate = %q", m)
	}
	if code, out, _ := runIn(t, sdir, nil, "image", "ls"); code != cli.ExitOK || !strings.Contains(out, digest) {
		t.Errorf("image ls after migrate: exit %d, %q; want %s", code, out, digest)
	}
	if after := export("after.tar.zst"); !bytes.Equal(after, before) {
		t.Errorf("export after migrate: %d bytes, differs from the %d before", len(after), len(before))
	}
	if code, _, errOut := runIn(t, sdir, nil, "image", "verify", "--all"); code != cli.ExitOK {
		t.Errorf("verify --all after migrate: exit %d\n%s", code, errOut)
	}
	code, out, _ = runApp(t, nil, "store", "migrate", sdir)
	if code != cli.ExitOK || !strings.Contains(out, "already layout v2") {
		t.Errorf("second migrate: exit %d, %q", code, out)
	}
	// A directory that is not a store is refused, and not made one.
	empty := filepath.Join(work, "nothing")
	if code, _, _ := runApp(t, nil, "store", "migrate", empty); code != cli.ExitError {
		t.Errorf("migrate of a missing store: exit %d, want %d", code, cli.ExitError)
	}
	if _, err := os.Stat(empty); err == nil {
		t.Errorf("migrate of a missing store created %s", empty)
	}
}
