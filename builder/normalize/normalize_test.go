package normalize

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const sde = 1700000000 // 2023-11-14T22:13:20Z

func gzipped(t testing.TB, content, name string, mtime time.Time) []byte {
	var b bytes.Buffer
	z, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	z.Name, z.ModTime, z.Comment = name, mtime, "a comment"
	z.Write([]byte(content))
	z.Close()
	return b.Bytes()
}

func TestNormGzip(t *testing.T) {
	in := gzipped(t, "hello\n", "hello.txt", time.Unix(2000000000, 0))
	out, changed, err := normGzip(in)
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	if out[3] != 0 || !bytes.Equal(out[4:8], []byte{0, 0, 0, 0}) || out[9] != 3 {
		t.Errorf("header % x, want no flags, mtime 0, OS 3", out[:10])
	}
	z, err := gzip.NewReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(z)
	if err != nil || string(got) != "hello\n" || z.Name != "" {
		t.Errorf("content %q name %q err %v", got, z.Name, err)
	}
	if _, changed, _ := normGzip(out); changed {
		t.Error("normalising twice changed the file again")
	}
	noNul := []byte{0x1f, 0x8b, 8, 0x08, 0, 0, 0, 0, 0, 3, 'n', 'o', 'n', 'u', 'l', 'l', 'x', 'y'}
	reserved := []byte{0x1f, 0x8b, 8, 0xe0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0}
	for _, bad := range [][]byte{noNul, reserved} {
		if _, _, err := normGzip(bad); err == nil {
			t.Errorf("normGzip(% x) accepted a broken header", bad)
		}
	}
}

func TestNormAr(t *testing.T) {
	member := func(name, mtime, uid, mode, data string) string {
		h := pad(name, 16) + pad(mtime, 12) + pad(uid, 6) + pad(uid, 6) + pad(mode, 8) + pad(itoa(len(data)), 10) + "`\n"
		if len(data)%2 == 1 {
			data += "\n"
		}
		return h + data
	}
	in := "!<arch>\n" + member("a.o/", "1700009999", "1000", "100664", "abc") + member("b.o/", "5", "0", "644", "dd")
	want := "!<arch>\n" + member("a.o/", "0", "0", "644", "abc") + member("b.o/", "0", "0", "644", "dd")
	out, changed, err := normAr([]byte(in))
	if err != nil || !changed || string(out) != want {
		t.Fatalf("normAr: changed=%v err=%v\n%q\nwant\n%q", changed, err, out, want)
	}
	if _, _, err := normAr([]byte("!<arch>\n" + "short")); err == nil {
		t.Error("truncated ar accepted")
	}
}

func pad(s string, n int) string { return s + strings.Repeat(" ", n-len(s)) }
func itoa(n int) string          { return fmtInt(n) }
func fmtInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestNormZip(t *testing.T) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, name := range []string{"META-INF/MANIFEST.MF", "a/b.class"} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: time.Date(2031, 1, 2, 3, 4, 6, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("content of " + name))
	}
	zw.Close()
	out, changed, err := normZip(sde)(b.Bytes())
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	zr, err := zip.NewReader(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Modified.Unix() > sde {
			t.Errorf("%s: modified %v, after SOURCE_DATE_EPOCH", f.Name, f.Modified)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		if err != nil || string(data) != "content of "+f.Name {
			t.Errorf("%s: %q %v", f.Name, data, err)
		}
	}
	if _, changed, _ := normZip(sde)(out); changed {
		t.Error("normalising twice changed the zip again")
	}
}

func TestPyc(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "mod.py")
	os.WriteFile(src, []byte("x = 1\n"), 0o644)
	os.Chtimes(src, time.Unix(sde+500, 0), time.Unix(sde+500, 0))
	os.Mkdir(filepath.Join(dir, "__pycache__"), 0o755)
	pyc := filepath.Join(dir, "__pycache__", "mod.cpython-311.pyc")
	hdr := make([]byte, 20)
	copy(hdr, []byte{0xa7, 0x0d, '\r', '\n'})
	binary.LittleEndian.PutUint32(hdr[8:], sde+500)
	binary.LittleEndian.PutUint32(hdr[12:], 99)
	os.WriteFile(pyc, hdr, 0o644)
	hashed := filepath.Join(dir, "__pycache__", "other.cpython-311.pyc")
	h2 := bytes.Clone(hdr)
	binary.LittleEndian.PutUint32(h2[4:], 1)
	os.WriteFile(hashed, h2, 0o644)

	rep, err := Tree(context.Background(), dir, Options{SourceDateEpoch: sde})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(pyc)
	if m, s := binary.LittleEndian.Uint32(got[8:]), binary.LittleEndian.Uint32(got[12:]); m != sde || s != 6 {
		t.Errorf("pyc header mtime %d size %d, want %d and 6 (the clamped source)", m, s, sde)
	}
	if got, _ := os.ReadFile(hashed); !bytes.Equal(got, h2) {
		t.Error("hash-based pyc was changed")
	}
	if len(rep.Changes) != 1 || rep.Changes[0].Kind != "pyc" {
		t.Errorf("changes = %+v", rep.Changes)
	}
	fi, _ := os.Stat(src)
	if fi.ModTime().Unix() != sde {
		t.Errorf("source mtime %v not clamped", fi.ModTime())
	}
}

func TestTreeClampsWithoutFollowingSymlinks(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "target")
	os.WriteFile(outside, []byte("x"), 0o644)
	future := time.Unix(sde+1000, 0)
	old := time.Unix(sde-1000, 0)
	os.Chtimes(outside, future, future)
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	os.WriteFile(filepath.Join(dir, "d", "new"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "d", "old"), []byte("x"), 0o644)
	os.Chtimes(filepath.Join(dir, "d", "new"), future, future)
	os.Chtimes(filepath.Join(dir, "d", "old"), old, old)
	os.Symlink(outside, filepath.Join(dir, "link"))
	os.WriteFile(filepath.Join(dir, "d", "page.gz"), gzipped(t, "x", "page", future), 0o644)
	os.Chtimes(filepath.Join(dir, "d"), future, future)
	if _, err := Tree(context.Background(), dir, Options{SourceDateEpoch: sde}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]int64{"d": sde, "d/new": sde, "d/old": sde - 1000, "d/page.gz": sde} {
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err != nil || fi.ModTime().Unix() != want {
			t.Errorf("%s: mtime %v (%v), want %d", p, fi.ModTime().Unix(), err, want)
		}
	}
	if fi, _ := os.Lstat(filepath.Join(dir, "link")); fi.ModTime().Unix() > sde {
		t.Error("symlink mtime not clamped")
	}
	if fi, _ := os.Stat(outside); fi.ModTime().Unix() != sde+1000 {
		t.Error("clamping followed a symlink out of the tree")
	}
}

func TestApplyNoise(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"etc/machine-id":               "0123456789abcdef0123456789abcdef\n",
		"etc/ssh/ssh_host_ed25519_key": "secret",
		"etc/ssh/sshd_config":          "Port 22\n",
		"var/lib/dpkg/status-old":      "old",
		"var/lib/dpkg/status":          "new",
		"var/lib/apt/lists/lock":       "",
		"var/lib/apt/lists/partial/.x": "",
		"run/lock/.keep":               "",
		"run/sshd.pid":                 "1",
		"etc/shadow":                   "root:*:20000:0:99999:7:::\nsshd:!:19000::::::\nnobody:*::::::\n",
		"var/cache/ldconfig/aux-cache": "x",
		"var/log/dpkg.log":             "log",
	}
	for p, c := range files {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(c), 0o640)
	}
	done, err := ApplyNoise(context.Background(), root, NoiseList, sde)
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"etc/ssh/ssh_host_ed25519_key", "var/lib/dpkg/status-old", "var/lib/apt/lists/lock", "run/sshd.pid", "var/cache/ldconfig/aux-cache", "var/log/dpkg.log"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); err == nil {
			t.Errorf("%s was not removed", gone)
		}
	}
	for _, kept := range []string{"etc/ssh/sshd_config", "var/lib/dpkg/status", "var/lib/apt/lists/partial/.x", "run/lock/.keep"} {
		if _, err := os.Lstat(filepath.Join(root, kept)); err != nil {
			t.Errorf("%s was removed", kept)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/machine-id")); len(b) != 0 {
		t.Errorf("machine-id not blanked: %q", b)
	}
	want := "root:*:19675:0:99999:7:::\nsshd:!:19000::::::\nnobody:*::::::\n"
	if b, _ := os.ReadFile(filepath.Join(root, "etc/shadow")); string(b) != want {
		t.Errorf("shadow = %q, want %q", b, want)
	}
	if len(done) == 0 || done[0].Path > done[len(done)-1].Path {
		t.Errorf("report not sorted: %v", done)
	}
}

// TestNoiseListDocumented: every rule has a reason, a known action, an
// absolute valid pattern, and appears in docs/noise.md.
func TestNoiseListDocumented(t *testing.T) {
	if *update {
		if err := os.WriteFile("../../docs/noise.md", noiseDoc(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := os.ReadFile("../../docs/noise.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range NoiseList {
		if !strings.HasPrefix(r.Pattern, "/") || r.Reason == "" {
			t.Errorf("rule %+v: pattern must be absolute and the reason given", r)
		}
		if _, err := filepathMatch(r.Pattern); err != nil {
			t.Errorf("rule %q: %v", r.Pattern, err)
		}
		switch r.Action {
		case Delete, DeleteContents, Blank, ClampShadow, Regenerate, Keep:
		default:
			t.Errorf("rule %q: unknown action %q", r.Pattern, r.Action)
		}
		if !bytes.Contains(doc, []byte("`"+r.Pattern+"`")) {
			t.Errorf("docs/noise.md does not list %s", r.Pattern)
		}
	}
	if !bytes.Contains(doc, []byte("Version "+fmtInt(NoiseVersion))) {
		t.Errorf("docs/noise.md does not say Version %d", NoiseVersion)
	}
}

func filepathMatch(p string) (bool, error) { return filepath.Match(p, "/") }

// FuzzNormalize: the gzip, ar and zip rewriters never panic, and what
// they produce is stable (normalising again changes nothing).
func FuzzNormalize(f *testing.F) {
	f.Add(gzipped(f, "seed", "name", time.Unix(2000000000, 0)))
	f.Add([]byte("!<arch>\na.o/            1700009999  1000  1000  100664  3         `\nabc\n"))
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "x", Modified: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)})
	w.Write([]byte("x"))
	zw.Close()
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fix := range []func([]byte) ([]byte, bool, error){normGzip, normAr, normZip(sde)} {
			out, changed, err := fix(bytes.Clone(data))
			if err != nil || !changed {
				continue
			}
			if _, again, err := fix(bytes.Clone(out)); err != nil || again {
				t.Fatalf("second pass: changed=%v err=%v", again, err)
			}
		}
	})
}

var update = flag.Bool("update", false, "rewrite golden files (docs/noise.md)")

// noiseDoc is docs/noise.md, made from NoiseList.
func noiseDoc() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `# The noise list

Version %d (builder/normalize/noise.go, NoiseVersion). Every build records the
version in its provenance; a change to the list bumps it, because the same
lock then gives another image.

A build leaves behind files that differ from one build to the next (logs,
caches, backups, random ids, keys) or that belong to the host an image is
installed on rather than to the image (its name, its resolver). After the
maintainer scripts and customize commands ran, `+"`ingot build`"+` applies these
rules, in order (the first rule that matches a path decides), to every path of
the image; `+"`ingot normalize --noise DIR`"+` applies them to any tree.

Actions:

- **delete**: the path is removed (a directory with everything in it).
- **blank**: the file is truncated to zero bytes, owner and mode kept.
- **clamp-shadow**: the last-change field (days) of every shadow(5) entry is
  set to the day of SOURCE_DATE_EPOCH when it is later.
- **regenerate-on-first-boot**: removed from the image; the host makes its own
  (the reason says how). The pusher treats these as local paths of each host.
- **keep**: an exception to the rules after it.

Compared with mmdebstrap's tarball of the same packages, the paths an ingot
image lacks are exactly the ones the delete and regenerate rules below remove
(checked by TestBuildMinimalFromMirror in cmd/ingot).

| pattern | action | reason |
|---|---|---|
`, NoiseVersion)
	for _, r := range NoiseList {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r.Pattern, r.Action, strings.ReplaceAll(r.Reason, "|", "\\|"))
	}
	b.WriteString(`
After the noise list, normalisation (builder/normalize, also ` + "`ingot normalize`" + `)
rewrites gzip headers, timestamp-based .pyc headers, ar member headers and zip
timestamps, and clamps every mtime to SOURCE_DATE_EPOCH: see docs/builder.md.
`)
	return []byte(b.String())
}
