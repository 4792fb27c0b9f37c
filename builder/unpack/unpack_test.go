package unpack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// rawDeb writes a .deb by hand (dpkg-deb refuses to make hostile ones):
// the given tar entries as data.tar.gz.
func rawDeb(t *testing.T, dir, name string, entries []tar.Header, bodies map[string]string) string {
	t.Helper()
	tgz := func(hdrs []tar.Header, bodies map[string]string) []byte {
		var b bytes.Buffer
		z := gzip.NewWriter(&b)
		tw := tar.NewWriter(z)
		for _, h := range hdrs {
			h := h
			body := bodies[h.Name]
			if h.Typeflag == tar.TypeReg {
				h.Size = int64(len(body))
			}
			if err := tw.WriteHeader(&h); err != nil {
				t.Fatal(err)
			}
			tw.Write([]byte(body))
		}
		tw.Close()
		z.Close()
		return b.Bytes()
	}
	control := tgz([]tar.Header{{Name: "./control", Typeflag: tar.TypeReg, Mode: 0o644}},
		map[string]string{"./control": "Package: " + name + "\nVersion: 1\nArchitecture: all\nDescription: x\n"})
	data := tgz(entries, bodies)
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	member := func(n string, d []byte) {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8o%-10d`\n", n, 0, 0, 0, 0o644, len(d))
		ar.Write(d)
		if len(d)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	member("debian-binary", []byte("2.0\n"))
	member("control.tar.gz", control)
	member("data.tar.gz", data)
	p := filepath.Join(dir, name+".deb")
	if err := os.WriteFile(p, ar.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func dirH(n string) tar.Header { return tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755} }
func fileH(n string) tar.Header {
	return tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644}
}

// TestUnpackRefusesHostilePaths: nothing is written outside the root and
// the error names the package and the path.
func TestUnpackRefusesHostilePaths(t *testing.T) {
	testenv.RequireRoot(t)
	tests := []struct {
		name    string
		entries []tar.Header
		want    string
	}{
		{"dotdot", []tar.Header{dirH("./"), fileH("./../escape")}, "climbs out of the root"},
		{"dotdot-deep", []tar.Header{dirH("./"), dirH("./etc/"), fileH("./etc/../../escape")}, "climbs out of the root"},
		{"through-symlink", []tar.Header{dirH("./"), {Name: "./etc", Typeflag: tar.TypeSymlink, Linkname: "/OUTSIDE"}, fileH("./etc/escape")}, "symlink"},
		{"through-relative-symlink", []tar.Header{dirH("./"), {Name: "./up", Typeflag: tar.TypeSymlink, Linkname: "../../.."}, fileH("./up/escape")}, "symlink"},
		{"hardlink-out", []tar.Header{dirH("./"), {Name: "./h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}}, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "root")
			outside := filepath.Join(base, "OUTSIDE")
			os.Mkdir(root, 0o755)
			os.Mkdir(outside, 0o755)
			entries := tt.entries
			for i := range entries {
				if entries[i].Linkname == "/OUTSIDE" {
					entries[i].Linkname = outside
				}
			}
			p := rawDeb(t, base, "evil", entries, nil)
			_, err := All(context.Background(), root, []Deb{{Path: p, Name: "evil_1_all"}}, 2, false, nil)
			if err == nil || !strings.Contains(err.Error(), "evil_1_all") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want an error naming evil_1_all and %q", err, tt.want)
			}
			if ents, _ := os.ReadDir(outside); len(ents) > 0 {
				t.Errorf("written outside the root: %v", ents)
			}
			if _, err := os.Lstat(filepath.Join(base, "escape")); err == nil {
				t.Error("escape written beside the root")
			}
		})
	}
}

// TestUnpackFileConflict: two packages shipping one file without Replaces
// is an error naming both, as with dpkg.
func TestUnpackFileConflict(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	a := rawDeb(t, dir, "a", []tar.Header{dirH("./"), dirH("./etc/"), fileH("./etc/same")}, map[string]string{"./etc/same": "a"})
	b := rawDeb(t, dir, "b", []tar.Header{dirH("./"), dirH("./etc/"), fileH("./etc/same")}, map[string]string{"./etc/same": "b"})
	_, err := All(context.Background(), root, []Deb{{Path: a, Name: "a_1_all"}, {Path: b, Name: "b_1_all"}}, 2, false, nil)
	if err == nil || !strings.Contains(err.Error(), "file conflict: /etc/same is in a_1_all and b_1_all") {
		t.Fatalf("err = %v", err)
	}
}

// TestReplacesVersion: Replaces takes a file over only from the versions
// it names ("b (<< 2)" does not replace b 2). The builder once dropped the
// version and let any Replaces on the name win.
func TestReplacesVersion(t *testing.T) {
	ctl := func(text string) *deb.Control {
		ps, err := deb.ParseParagraphs(strings.NewReader(text), "control")
		if err != nil {
			t.Fatal(err)
		}
		return &deb.Control{Paragraph: ps[0]}
	}
	b := ctl("Package: b\nVersion: 2\n")
	for _, tc := range []struct {
		replaces string
		want     bool
	}{
		{"b", true}, {"b (<< 2)", false}, {"b (<< 2.1)", true}, {"x, b:any (>= 2)", true}, {"b (= 1)", false}, {"c", false},
	} {
		got, err := replaces(ctl("Package: a\nVersion: 1\nReplaces: "+tc.replaces+"\n"), b)
		if err != nil || got != tc.want {
			t.Errorf("Replaces: %s on b 2 = %v, %v; want %v", tc.replaces, got, err, tc.want)
		}
	}
	if _, err := replaces(ctl("Package: a\nReplaces: b (<= \n"), b); err == nil || !strings.Contains(err.Error(), "package a: Replaces") {
		t.Errorf("malformed Replaces: err = %v, want one naming the package and field", err)
	}
}
