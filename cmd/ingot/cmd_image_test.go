package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/imagetar"
	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// runIn runs ingot with stdin and the store in storeDir.
func runIn(t *testing.T, storeDir string, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	app := &cli.App{Stdin: stdin, Stdout: &stdout, Stderr: &stderr, Args: append([]string{"--store", storeDir}, args...),
		Getenv: func(string) string { return "" }}
	code := app.Execute(context.Background())
	return code, stdout.String(), stderr.String()
}

// tarOf builds a tar from (name, type, body/link) triples.
type tentry struct {
	name string
	typ  byte
	body string
	link string
}

func tarOf(t *testing.T, entries ...tentry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Linkname: e.link, Size: int64(len(e.body)), Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if e.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t *testing.T, p string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// countObjects counts the store's objects: loose files, and the entries
// of its pack indexes (layout v2).
func countObjects(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(filepath.Join(dir, "objects"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	idx, _ := filepath.Glob(filepath.Join(dir, "packindex", "*"))
	for _, p := range idx {
		b, err := os.ReadFile(p)
		if err != nil || len(b) < 24 {
			t.Fatalf("pack index %s: %d bytes, %v", p, len(b), err)
		}
		n += int(binary.BigEndian.Uint32(b[20:]))
	}
	return n
}

func TestImageCommands(t *testing.T) {
	work := t.TempDir()
	sdir := filepath.Join(work, "store")
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB: several chunks
	tarA := writeFile(t, filepath.Join(work, "a.tar"), tarOf(t,
		tentry{name: "etc/", typ: tar.TypeDir},
		tentry{name: "etc/hostname", typ: tar.TypeReg, body: "a\n"},
		tentry{name: "usr/", typ: tar.TypeDir},
		tentry{name: "usr/big", typ: tar.TypeReg, body: big},
		tentry{name: "usr/link", typ: tar.TypeSymlink, link: "big"},
	))

	code, out, errOut := runIn(t, sdir, nil, "image", "import", tarA, "--name", "test:a", "--level", "fastest")
	if code != cli.ExitOK {
		t.Fatalf("import: exit %d\n%s", code, errOut)
	}
	digest := strings.TrimSpace(out)
	if _, err := images.ParseDigest(digest); err != nil {
		t.Fatalf("import printed %q, not a digest", out)
	}
	objects := countObjects(t, sdir)

	// Same content again, through stdin and zstd: same digest, no new object.
	var zbuf bytes.Buffer
	zw, _ := zstd.NewWriter(&zbuf)
	raw, _ := os.ReadFile(tarA)
	zw.Write(raw)
	zw.Close()
	code, out, errOut = runIn(t, sdir, &zbuf, "image", "import", "-", "--json")
	var res struct{ Digest string }
	if code != cli.ExitOK || json.Unmarshal([]byte(out), &res) != nil || res.Digest != digest {
		t.Fatalf("second import: exit %d, %q (want digest %s)\n%s", code, out, digest, errOut)
	}
	if n := countObjects(t, sdir); n != objects {
		t.Errorf("second import of the same content: %d objects, was %d", n, objects)
	}

	// A second image sharing the big file: only its own small file and
	// manifest are new.
	tarB := writeFile(t, filepath.Join(work, "b.tar"), tarOf(t,
		tentry{name: "etc/", typ: tar.TypeDir},
		tentry{name: "etc/hostname", typ: tar.TypeReg, body: "b\n"},
		tentry{name: "usr/", typ: tar.TypeDir},
		tentry{name: "usr/big", typ: tar.TypeReg, body: big},
	))
	if code, _, errOut := runIn(t, sdir, nil, "image", "import", tarB, "--name", "test:b"); code != cli.ExitOK {
		t.Fatalf("import b: exit %d\n%s", code, errOut)
	}
	if n := countObjects(t, sdir); n != objects+2 {
		t.Errorf("image sharing a file: %d objects, want %d (+ one file, + one manifest)", n, objects+2)
	}

	// ls
	code, out, _ = runIn(t, sdir, nil, "image", "ls", "--json")
	var rows []struct {
		Digest string
		Refs   []string
		Paths  int
	}
	if code != cli.ExitOK || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 2 {
		t.Fatalf("ls --json: exit %d, %q", code, out)
	}
	for _, r := range rows {
		if r.Digest == digest && (!slices.Equal(r.Refs, []string{"test:a"}) || r.Paths != 6) {
			t.Errorf("ls row %+v, want refs [test:a] and 6 paths", r)
		}
	}

	// manifest by ref, by prefix, by tar path; its sha256 is the digest.
	for _, ref := range []string{"test:a", digest[:10], tarA} {
		code, out, errOut = runIn(t, sdir, nil, "image", "manifest", ref)
		if code != cli.ExitOK || images.Sum([]byte(out)).String() != digest {
			t.Errorf("manifest %s: exit %d, sha256 of output is not the digest\n%s", ref, code, errOut)
		}
	}
	if code, out, _ := runIn(t, sdir, nil, "image", "manifest", "test:a", "--format", "mtree"); code != cli.ExitOK || !strings.Contains(out, "type=link") {
		t.Errorf("manifest --format mtree: exit %d\n%s", code, out)
	}

	// export to a file and to stdout: the same deterministic bytes.
	outTar := filepath.Join(work, "out.tar")
	if code, _, errOut := runIn(t, sdir, nil, "image", "export", "test:a", "-o", outTar); code != cli.ExitOK {
		t.Fatalf("export: exit %d\n%s", code, errOut)
	}
	code, stdoutTar, _ := runIn(t, sdir, nil, "image", "export", "test:a", "-o", "-")
	fileTar, _ := os.ReadFile(outTar)
	if code != cli.ExitOK || !bytes.Equal(fileTar, []byte(stdoutTar)) {
		t.Errorf("export -o - differs from export -o FILE")
	}
	if code, _, errOut := runIn(t, sdir, nil, "image", "export", "test:a", "-o", filepath.Join(work, "out.tar.zst")); code != cli.ExitOK {
		t.Fatalf("export zst: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runIn(t, sdir, nil, "image", "export", "test:a", "-o", filepath.Join(work, "again.tar.zst")); code != cli.ExitOK {
		t.Fatalf("export zst: exit %d\n%s", code, errOut)
	}
	z1, _ := os.ReadFile(filepath.Join(work, "out.tar.zst"))
	z2, _ := os.ReadFile(filepath.Join(work, "again.tar.zst"))
	if !bytes.Equal(z1, z2) {
		t.Errorf("two .tar.zst exports of one image differ")
	}
	code, out, _ = runIn(t, sdir, nil, "image", "import", filepath.Join(work, "out.tar.zst"))
	if code != cli.ExitOK || strings.TrimSpace(out) != digest {
		t.Errorf("re-import of the exported .tar.zst: %q, want %s", out, digest)
	}

	// verify: sound, then a damaged chunk is found (exit 1).
	if code, _, errOut := runIn(t, sdir, nil, "image", "verify", "test:a"); code != cli.ExitOK {
		t.Fatalf("verify: exit %d\n%s", code, errOut)
	}
	hostname := images.Sum([]byte("a\n")).String()
	if code, _, errOut := runIn(t, sdir, nil, "image", "verify", "--all"); code != cli.ExitOK {
		t.Fatalf("verify --all before damage: exit %d\n%s", code, errOut)
	}
	// The store is layout v2: etc/hostname is in the first frame of the
	// first pack written (the tar's first file); damage that frame.
	packs, _ := filepath.Glob(filepath.Join(sdir, "packs", "*"))
	slices.SortFunc(packs, func(a, b string) int {
		fa, _ := os.Stat(a)
		fb, _ := os.Stat(b)
		return fa.ModTime().Compare(fb.ModTime())
	})
	if len(packs) == 0 {
		t.Fatal("no pack in the store")
	}
	rawPack, _ := os.ReadFile(packs[0])
	for i := 20; i < min(len(rawPack), 4000); i += 7 {
		rawPack[i] ^= 1
	}
	writeFile(t, packs[0], rawPack)
	code, out, _ = runIn(t, sdir, nil, "image", "verify", "test:a")
	if code != cli.ExitNegative || !strings.Contains(out, "etc/hostname") {
		t.Errorf("verify of a damaged store: exit %d, output %q; want 1 naming etc/hostname", code, out)
	}
	code, out, _ = runIn(t, sdir, nil, "image", "verify", "--all", "--json")
	var probs []struct{ What, Error string }
	jerr := json.Unmarshal([]byte(out), &probs)
	named := false
	for _, p := range probs {
		named = named || strings.Contains(p.What, hostname)
	}
	if code != cli.ExitNegative || jerr != nil || !named {
		t.Errorf("verify --all of a damaged store: exit %d, output %q; want 1 naming packs/…: object %s", code, out, hostname)
	}
	// export refuses to hand out damaged content, and leaves no file.
	bad := filepath.Join(work, "bad.tar")
	code, _, errOut = runIn(t, sdir, nil, "image", "export", "test:a", "-o", bad)
	if code != cli.ExitError || !strings.Contains(errOut, hostname) {
		t.Errorf("export of damaged content: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Errorf("failed export left %s behind", bad)
	}
	ents, _ := os.ReadDir(work)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".bad.tar") {
			t.Errorf("failed export left temp file %s", e.Name())
		}
	}

	// Usage and lookup errors.
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"image", "import", tarA, "--name", "Bad Name"}, cli.ExitUsage},
		{[]string{"image", "export", "test:a"}, cli.ExitUsage},
		{[]string{"image", "export", "test:a", "-o", "x.tar", "--compression", "lz4"}, cli.ExitUsage},
		{[]string{"image", "manifest", "test:a", "--format", "json"}, cli.ExitUsage},
		{[]string{"image", "manifest", "test:nope"}, cli.ExitError},
		{[]string{"image", "manifest", "ffff"}, cli.ExitError},
		{[]string{"serve", "--bwlimit", "fast"}, cli.ExitUsage},
		{[]string{"image", "verify"}, cli.ExitUsage},
		{[]string{"image", "import", tarA, "--level", "max"}, cli.ExitUsage},
		{[]string{"image", "verify", "--all", "test:a"}, cli.ExitUsage},
	} {
		if code, _, errOut := runIn(t, sdir, nil, tc.args...); code != tc.want {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, code, tc.want, errOut)
		}
	}
}

// A store served over HTTP reads like the local one (--store URL).
func TestImageOverHTTP(t *testing.T) {
	work := t.TempDir()
	sdir := filepath.Join(work, "store")
	tarA := writeFile(t, filepath.Join(work, "a.tar"), tarOf(t, tentry{name: "f", typ: tar.TypeReg, body: "served\n"}))
	if code, _, errOut := runIn(t, sdir, nil, "image", "import", tarA, "--name", "web:v1"); code != cli.ExitOK {
		t.Fatal(errOut)
	}
	h, err := backend.NewServer(sdir, backend.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	code, local, _ := runIn(t, sdir, nil, "image", "export", "web:v1", "-o", "-")
	code2, remote, errOut := runIn(t, srv.URL, nil, "image", "export", "web:v1", "-o", "-")
	if code != cli.ExitOK || code2 != cli.ExitOK || local != remote {
		t.Errorf("export over HTTP: exit %d, %d bytes; local %d bytes\n%s", code2, len(remote), len(local), errOut)
	}
	if code, _, errOut := runIn(t, srv.URL, nil, "image", "verify", "web:v1"); code != cli.ExitOK {
		t.Errorf("verify over HTTP: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runIn(t, srv.URL, nil, "image", "ls"); code != cli.ExitError || !strings.Contains(errOut, "listing") {
		t.Errorf("ls over HTTP: exit %d, want 2 (no listings)\n%s", code, errOut)
	}
}

// snapshot lists every path under dir except under skip, with its size.
func snapshot(t *testing.T, dir, skip string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if p == skip {
			return filepath.SkipDir
		}
		out = append(out, p)
		return nil
	})
	return out
}

// Hostile tars are refused naming the entry, and nothing is written outside
// the store; inside it, no temp file is left and no image appears.
func TestImageImportHostile(t *testing.T) {
	zstdOf := func(b []byte) []byte {
		var buf bytes.Buffer
		zw, _ := zstd.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	good := tarOf(t, tentry{name: "a/", typ: tar.TypeDir}, tentry{name: "a/f", typ: tar.TypeReg, body: strings.Repeat("x", 100000)})
	tests := []struct {
		name string
		data func(outside string) []byte
		want string
	}{
		{"dotdot", func(o string) []byte {
			return tarOf(t, tentry{name: "a/../../escape", typ: tar.TypeReg, body: "x"})
		}, "escape"},
		{"absolute", func(o string) []byte {
			return tarOf(t, tentry{name: filepath.Join(o, "abs"), typ: tar.TypeReg, body: "x"})
		}, "abs"},
		{"symlink then through", func(o string) []byte {
			return tarOf(t, tentry{name: "evil", typ: tar.TypeSymlink, link: o},
				tentry{name: "evil/planted", typ: tar.TypeReg, body: "x"})
		}, "evil/planted"},
		{"hardlink to missing", func(o string) []byte {
			return tarOf(t, tentry{name: "h", typ: tar.TypeLink, link: "nothere"})
		}, "nothere"},
		{"truncated", func(o string) []byte { return good[:len(good)/2] }, ""},
		{"corrupt zstd", func(o string) []byte { z := zstdOf(good); z[len(z)/2] ^= 0xff; return z }, "zstd"},
		{"truncated zstd", func(o string) []byte { z := zstdOf(good); return z[:len(z)-10] }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			outside := filepath.Join(work, "outside")
			os.Mkdir(outside, 0o755)
			sdir := filepath.Join(work, "store")
			in := writeFile(t, filepath.Join(work, "in.tar"), tc.data(outside))
			before := snapshot(t, work, sdir)
			cwd, _ := os.Getwd()
			cwdBefore := snapshot(t, cwd, "")
			code, _, errOut := runIn(t, sdir, nil, "image", "import", in)
			if code != cli.ExitError {
				t.Fatalf("exit %d, want 2\n%s", code, errOut)
			}
			if !strings.Contains(errOut, in) || !strings.Contains(errOut, tc.want) {
				t.Errorf("error does not name the input %s and %q:\n%s", in, tc.want, errOut)
			}
			if after := snapshot(t, work, sdir); !slices.Equal(before, after) {
				t.Errorf("files outside the store changed:\nbefore %q\nafter  %q", before, after)
			}
			if after := snapshot(t, cwd, ""); !slices.Equal(cwdBefore, after) {
				t.Errorf("files in the working directory changed")
			}
			for _, d := range []string{"images", "refs", "tmp"} {
				if ents, _ := os.ReadDir(filepath.Join(sdir, d)); len(ents) != 0 {
					t.Errorf("store %s/ holds %d entries after a refused import", d, len(ents))
				}
			}
			filepath.WalkDir(sdir, func(p string, d fs.DirEntry, err error) error {
				if err == nil && strings.HasPrefix(d.Name(), ".") {
					t.Errorf("temp file left in the store: %s", p)
				}
				return nil
			})
		})
	}
}

// The round trip on a real Debian root: import of mmdebstrap's tar then
// export equals imagetar.Write of the extracted tree byte for byte; the
// mtree form passes NetBSD mtree against that tree; verify --root agrees.
func TestImageDebianRoundTrip(t *testing.T) {
	testenv.RequireRoot(t)
	mtree := testenv.RequireTool(t, "mtree", "mtree-netbsd")
	tarPath := testenv.DebianRootTar(t)
	root := testenv.DebianRootDir(t)
	work := t.TempDir()
	sdir := filepath.Join(work, "store")

	code, out, errOut := runIn(t, sdir, nil, "image", "import", tarPath, "--name", "debian:minbase")
	if code != cli.ExitOK {
		t.Fatalf("import: exit %d\n%s", code, errOut)
	}
	digest := strings.TrimSpace(out)
	objects := countObjects(t, sdir)

	exported := filepath.Join(work, "export.tar")
	if code, _, errOut := runIn(t, sdir, nil, "image", "export", "debian:minbase", "-o", exported); code != cli.ExitOK {
		t.Fatalf("export: exit %d\n%s", code, errOut)
	}
	got, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m, err := images.WalkDir(ctx, root, images.WalkOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := imagetar.Write(ctx, &want, m, images.DirOpener(root)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("exported tar (%d bytes) differs from WriteTar of the extracted tree (%d bytes)", len(got), want.Len())
	}
	if m.Digest().String() != digest {
		t.Errorf("image digest %s, manifest of the tree %s", digest, m.Digest())
	}

	// Importing the export again: same digest, not one new object.
	code, out, _ = runIn(t, sdir, nil, "image", "import", exported)
	if code != cli.ExitOK || strings.TrimSpace(out) != digest {
		t.Errorf("re-import: %q, want %s", out, digest)
	}
	if n := countObjects(t, sdir); n != objects {
		t.Errorf("re-import added objects: %d, was %d", n, objects)
	}

	// mtree: Debian's NetBSD mtree reads the spec from stdin without -f.
	code, spec, errOut := runIn(t, sdir, nil, "image", "manifest", "debian:minbase", "--format", "mtree")
	if code != cli.ExitOK {
		t.Fatalf("manifest: %s", errOut)
	}
	cmd := exec.Command(mtree, "-p", root)
	cmd.Stdin = strings.NewReader(spec)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("mtree -p %s reports differences: %v\n%.2000s", root, err, out)
	}

	if code, out, errOut := runIn(t, sdir, nil, "image", "verify", "debian:minbase", "--root", root); code != cli.ExitOK {
		t.Errorf("verify --root: exit %d\n%.2000s\n%s", code, out, errOut)
	}
	if code, _, errOut := runIn(t, sdir, nil, "image", "verify", "debian:minbase"); code != cli.ExitOK {
		t.Errorf("verify: exit %d\n%s", code, errOut)
	}
}

// verify --root reports differences like mtree and exits 1.
func TestImageVerifyRoot(t *testing.T) {
	work := t.TempDir()
	sdir := filepath.Join(work, "store")
	root := filepath.Join(work, "root")
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	writeFile(t, filepath.Join(root, "etc/motd"), []byte("hello\n"))
	writeFile(t, filepath.Join(root, "etc/gone"), []byte("x\n"))
	ctx := context.Background()
	m, err := images.WalkDir(ctx, root, images.WalkOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(work, "root.tar")
	f, _ := os.Create(tarPath)
	if err := imagetar.Write(ctx, f, m, images.DirOpener(root)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if code, _, errOut := runIn(t, sdir, nil, "image", "import", tarPath, "--name", "r:1"); code != cli.ExitOK {
		t.Fatal(errOut)
	}
	if code, _, errOut := runIn(t, sdir, nil, "image", "verify", "r:1", "--root", root); code != cli.ExitOK {
		t.Fatalf("verify of the same tree: exit %d\n%s", code, errOut)
	}
	os.Remove(filepath.Join(root, "etc/gone"))
	writeFile(t, filepath.Join(root, "etc/new"), []byte("n\n"))
	os.Chmod(filepath.Join(root, "etc/motd"), 0o600)
	code, out, _ := runIn(t, sdir, nil, "image", "verify", "r:1", "--root", root, "--ignore-mtime")
	want := "etc/gone missing\netc/motd changed\n\tmode expected 0644 found 0600\netc/new extra\n"
	if code != cli.ExitNegative || out != want {
		t.Errorf("verify --root: exit %d, output\n%s\nwant\n%s", code, out, want)
	}
}

// TestDemo runs the README's first command with a hand-made tree in place
// of the Debian build (TestDemoBuild does the whole thing).
func TestDemo(t *testing.T) {
	code, out, errOut := runIn(t, filepath.Join(t.TempDir(), "unused"), nil, "demo", "--tree")
	if code != cli.ExitOK || !strings.Contains(out, "same digest") || !strings.Contains(out, "matches the image") || !strings.Contains(out, "steps passed") {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestDemoBuild runs the README's first command as it is: lock and build a
// Debian image from the mirror, push it to three agents, change it, push
// again.
func TestDemoBuild(t *testing.T) {
	testenv.RequireRoot(t)
	code, out, errOut := runIn(t, filepath.Join(t.TempDir(), "unused"), nil, "demo")
	// The second push changes programs and os-release: both triggers fire.
	for _, want := range []string{"locked ", "built image ", "same digest", "matches the image", "3 of 3 hosts ok",
		"triggers fired: greet (programs changed: 4), os-release",
		"demo-03 waits: blocked: prometheus alert SSHSessionOpen", "every agent reports image 3", "all 6 steps passed"} {
		if !strings.Contains(out, want) {
			t.Fatalf("demo output lacks %q: exit %d\n%s\n%s", want, code, out, errOut)
		}
	}
	if code != cli.ExitOK {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
}
