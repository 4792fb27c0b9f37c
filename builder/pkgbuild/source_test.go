package pkgbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/debrepo"
)

const dscText = `-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

Format: 3.0 (quilt)
Source: demo
Binary: demo
Architecture: any
Version: 1:1.2-3
Build-Depends: debhelper-compat (= 13), libx-dev [amd64] <!nocheck>
Build-Depends-Indep: python3
Checksums-Sha256:
 %s %d demo_1.2.orig.tar.gz
-----BEGIN PGP SIGNATURE-----

iQIzBAEBCAAdFiEE
=abcd
-----END PGP SIGNATURE-----
`

func writeDsc(t *testing.T, content string) (dir, dsc string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "demo_1.2.orig.tar.gz"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("tarball"))
	dsc = filepath.Join(dir, "demo_1.2-3.dsc")
	if err := os.WriteFile(dsc, []byte(fmt.Sprintf(dscText, hex.EncodeToString(h[:]), len("tarball"))), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, dsc
}

func TestLoadDsc(t *testing.T) {
	_, dsc := writeDsc(t, "tarball")
	src, err := LoadDsc(dsc)
	if err != nil {
		t.Fatal(err)
	}
	if src.Name != "demo" || src.Version != "1:1.2-3" || src.UpstreamVersion() != "1.2" || src.ID() != "demo_1.2-3" || len(src.Files) != 1 {
		t.Fatalf("LoadDsc = %+v", src)
	}
	br, err := src.BuildRelations("amd64")
	if err != nil {
		t.Fatal(err)
	}
	// nocheck is active: libx-dev <!nocheck> is left out.
	if br.Depends != "debhelper-compat (= 13), python3" {
		t.Errorf("Depends = %q", br.Depends)
	}
	// A tampered file is refused.
	_, dsc = writeDsc(t, "tarbalL")
	if _, err := LoadDsc(dsc); !errors.Is(err, ErrChecksum) {
		t.Errorf("tampered tarball: err = %v, want ErrChecksum", err)
	}
	// A missing file is refused.
	dir, dsc := writeDsc(t, "tarball")
	os.Remove(filepath.Join(dir, "demo_1.2.orig.tar.gz"))
	if _, err := LoadDsc(dsc); err == nil {
		t.Error("missing tarball accepted")
	}
}

func TestParseDscRefuses(t *testing.T) {
	sum := strings.Repeat("a", 64)
	for name, text := range map[string]string{
		"no checksums":  "Source: a\nVersion: 1\n",
		"path in name":  "Source: a\nVersion: 1\nChecksums-Sha256:\n " + sum + " 1 ../x\n",
		"slash in name": "Source: a\nVersion: 1\nChecksums-Sha256:\n " + sum + " 1 d/x\n",
		"bad name":      "Source: A_b\nVersion: 1\nChecksums-Sha256:\n " + sum + " 1 x\n",
		"bad version":   "Source: ab\nVersion: x y\nChecksums-Sha256:\n " + sum + " 1 x\n",
		"short sum":     "Source: ab\nVersion: 1\nChecksums-Sha256:\n abc 1 x\n",
		"twice":         "Source: ab\nVersion: 1\nChecksums-Sha256:\n " + sum + " 1 x\n " + sum + " 1 x\n",
		"two paras":     "Source: ab\nVersion: 1\n\nSource: cd\n",
	} {
		if _, _, err := ParseDsc([]byte(text), "t.dsc"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseChangelogHead(t *testing.T) {
	n, v, err := ParseChangelogHead([]byte("\nhello (2.10-3) unstable; urgency=medium\n\n  * x\n"))
	if err != nil || n != "hello" || v != "2.10-3" {
		t.Fatalf("= %q %q %v", n, v, err)
	}
	for _, bad := range []string{"", "hello 2.10", "Hello (1) x", "hello () x", "hello (1 x"} {
		if _, _, err := ParseChangelogHead([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseDsc(f *testing.F) {
	h := sha256.Sum256([]byte("tarball"))
	f.Add([]byte(fmt.Sprintf(dscText, hex.EncodeToString(h[:]), 7)))
	f.Add([]byte("Source: a\nVersion: 1\nChecksums-Sha256:\n " + strings.Repeat("a", 64) + " 1 x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		src, sums, err := ParseDsc(data, "f.dsc")
		if err != nil {
			return
		}
		if src.validate() != nil || len(sums) == 0 {
			t.Fatalf("accepted %+v %+v", src, sums)
		}
		for _, s := range sums {
			if !plainName(s.Name) || filepath.Base(s.Name) != s.Name {
				t.Fatalf("file name %q accepted", s.Name)
			}
		}
	})
}

func FuzzParseChangelogHead(f *testing.F) {
	f.Add([]byte("hello (2.10-3) unstable; urgency=medium\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, v, err := ParseChangelogHead(data)
		if err == nil && (!srcNameRE.MatchString(n) || !srcVerRE.MatchString(v)) {
			t.Fatalf("accepted %q %q", n, v)
		}
	})
}

func TestFetchSourceRefusesBadNames(t *testing.T) {
	dir := t.TempDir()
	for _, nv := range [][2]string{{"../etc", ""}, {"hello", "1/../../x"}, {"", ""}} {
		if _, err := FetchSource(context.Background(), &debrepo.Index{}, nil, nv[0], nv[1], dir); err == nil || !strings.Contains(err.Error(), "is not a source package name") {
			t.Errorf("FetchSource(%q, %q): err = %v", nv[0], nv[1], err)
		}
	}
}
