package main

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/differ/differtest"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// diffRun runs ingot in-process and returns its exit code and output.
func diffRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Args: args}
	code := a.Execute(context.Background())
	return code, out.String(), errb.String()
}

// fixtureTars writes the differ's fixture pair as tars in a temp dir.
func fixtureTars(t *testing.T) (dir, a, b string) {
	t.Helper()
	dir = t.TempDir()
	ia, ib := differtest.Pair()
	a, b = filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	if err := differtest.WriteTarFile(a, ia); err != nil {
		t.Fatal(err)
	}
	if err := differtest.WriteTarFile(b, ib); err != nil {
		t.Fatal(err)
	}
	return dir, a, b
}

// withLabels rewrites the "# a:"/"# b:" header lines of a text report.
func withLabels(report, a, b string) string {
	lines := strings.SplitAfter(report, "\n")
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "# a: "):
			lines[i] = "# a: " + a + "\n"
		case strings.HasPrefix(l, "# b: "):
			lines[i] = "# b: " + b + "\n"
		}
	}
	return strings.Join(lines, "")
}

func TestDiffFixtureTars(t *testing.T) {
	dir, a, b := fixtureTars(t)
	want, err := os.ReadFile("../../differ/testdata/fixture.txt")
	if err != nil {
		t.Fatal(err)
	}
	html := filepath.Join(dir, "report.html")
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"text", []string{"diff", a, b}, 1, nil},
		{"identical", []string{"diff", a, a}, 0, []string{"summary: the images are identical"}},
		{"json", []string{"diff", "--json", a, b}, 1, []string{`"mtime_only_ignored": 1`, `"alerts": 2`}},
		{"html to file", []string{"diff", "--format", "html", "-o", html, a, b}, 1, nil},
		{"one arg", []string{"diff", a}, 3, nil},
		{"bad format", []string{"diff", "--format", "pdf", a, b}, 3, nil},
		{"missing", []string{"diff", a, filepath.Join(dir, "nope.tar")}, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := diffRun(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, errOut)
			}
			if tc.name == "text" {
				if got := withLabels(out, "fixture-a", "fixture-b"); got != string(want) {
					t.Errorf("report of the fixture tars differs from differ/testdata/fixture.txt:\n%s", got)
				}
			}
			for _, c := range tc.contains {
				if !strings.Contains(out, c) {
					t.Errorf("output lacks %q:\n%s", c, out)
				}
			}
		})
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("29 paths differ: 6 added, 4 removed, 19 changed")) {
		t.Errorf("HTML report lacks the summary")
	}
}

// TestDiffMtimeOnly (usr/bin/c is a hardlink of usr/bin/a, so three paths):
// two images that differ only in mtimes are identical
// by default (exit 0, with the count said), different with --mtime.
func TestDiffMtimeOnly(t *testing.T) {
	dir := t.TempDir()
	ia, _ := differtest.Pair()
	ib := ia
	ib.M = &images.Manifest{Entries: append([]images.Entry(nil), ia.M.Entries...)}
	for i := range ib.M.Entries {
		if ib.M.Entries[i].Path == "etc/motd" || ib.M.Entries[i].Path == "usr/bin/a" {
			ib.M.Entries[i].Mtime += 60
		}
	}
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	if err := differtest.WriteTarFile(a, ia); err != nil {
		t.Fatal(err)
	}
	if err := differtest.WriteTarFile(b, ib); err != nil {
		t.Fatal(err)
	}
	code, out, _ := diffRun(t, "diff", a, b)
	if code != 0 || !strings.Contains(out, "summary: 3 paths differ only in mtime: ignored (--mtime shows them)") ||
		!strings.Contains(out, "the images are identical") {
		t.Errorf("exit %d, want 0 and the ignored count:\n%s", code, out)
	}
	code, out, _ = diffRun(t, "diff", "--mtime", a, b)
	if code != 1 || !strings.Contains(out, "changed /etc/motd  time: 1700000000 (2023-11-14T22:13:20Z) -> 1700000060 (2023-11-14T22:14:20Z)") {
		t.Errorf("--mtime: exit %d, want 1 and the mtime change:\n%s", code, out)
	}
}

// TestDiffDirectories diffs the fixture pair materialised as directories:
// the same report as from the tars (devices, xattrs, hardlinks, owners
// read from a live tree).
func TestDiffDirectories(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	ia, ib := differtest.Pair()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := differtest.WriteDir(a, ia); err != nil {
		t.Fatal(err)
	}
	if err := differtest.WriteDir(b, ib); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../differ/testdata/fixture.txt")
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := diffRun(t, "diff", a, b)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, errOut)
	}
	if got := withLabels(out, "fixture-a", "fixture-b"); got != string(want) {
		t.Errorf("report of the fixture directories differs from differ/testdata/fixture.txt:\n%s", got)
	}
}

// TestDiffBadInput: unreadable, corrupt and hostile images get a clear
// error naming the input, and exit 2.
func TestDiffBadInput(t *testing.T) {
	dir, a, _ := fixtureTars(t)
	good, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	hostile := func(name string, hdrs ...*tar.Header) string {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hdrs {
			if h.Typeflag == tar.TypeReg {
				h.Size = 2
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				tw.Write([]byte("x\n"))
			}
		}
		tw.Close()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, arg, want string
	}{
		{"truncated", write("truncated.tar", good[:len(good)/2+100], 0o644), "truncated.tar"},
		{"corrupt gzip", write("corrupt.tar.gz", []byte("\x1f\x8b\x08\x00garbage-garbage-garbage"), 0o644), "corrupt.tar.gz"},
		{"escapes root", hostile("dotdot.tar", &tar.Header{Name: "../etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}), "climbs out of the root"},
		{"through symlink", hostile("symlink.tar",
			&tar.Header{Name: "etc", Typeflag: tar.TypeSymlink, Linkname: "/tmp"},
			&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}), "parent ./etc is a link"},
		{"hardlink to nothing", hostile("hardlink.tar", &tar.Header{Name: "a", Typeflag: tar.TypeLink, Linkname: "missing"}), "not earlier in the archive"},
		{"not an image", write("notes.txt", []byte("hello, this is not a tar file at all\n"), 0o644), "notes.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := diffRun(t, "diff", a, tc.arg)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stdout: %s", code, out)
			}
			if !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, filepath.Base(tc.arg)) {
				t.Errorf("error %q should name %s and say %q", errOut, filepath.Base(tc.arg), tc.want)
			}
		})
	}
	if os.Geteuid() != 0 {
		p := write("unreadable.tar", good, 0o000)
		if code, _, errOut := diffRun(t, "diff", a, p); code != 2 || !strings.Contains(errOut, "permission denied") {
			t.Errorf("unreadable tar: exit %d, %s", code, errOut)
		}
	}
}

// TestDiffStoreRefs diffs the fixture pair imported into a store, named
// by name:tag and by digest prefix: the same report as from the tars.
func TestDiffStoreRefs(t *testing.T) {
	dir := t.TempDir()
	storeDir := filepath.Join(dir, "store")
	st, err := store.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var digests []images.Digest
	ia, ib := differtest.Pair()
	for i, img := range []differtest.Image{ia, ib} {
		for _, content := range img.Files {
			if _, _, err := st.PutFile(ctx, bytes.NewReader(content)); err != nil {
				t.Fatal(err)
			}
		}
		d, err := st.PutManifest(ctx, img.M)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetRef(ctx, []string{"fixture:a", "fixture:b"}[i], d); err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	st.Close()
	want, err := os.ReadFile("../../differ/testdata/fixture.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"fixture:a", "fixture:b"}, {digests[0].String()[:12], "fixture:b"}} {
		code, out, errOut := diffRun(t, append([]string{"--store", storeDir, "diff"}, args...)...)
		if code != 1 {
			t.Fatalf("diff %v: exit %d: %s", args, code, errOut)
		}
		if got := withLabels(out, "fixture-a", "fixture-b"); got != string(want) {
			t.Errorf("diff %v differs from differ/testdata/fixture.txt:\n%s", args, got)
		}
	}
	code, _, errOut := diffRun(t, "--store", storeDir, "diff", "fixture:a", "fixture:nope")
	if code != 2 || !strings.Contains(errOut, "fixture:nope") {
		t.Errorf("unknown ref: exit %d, %s", code, errOut)
	}
	code, _, errOut = diffRun(t, "--store", filepath.Join(dir, "no-store"), "diff", "fixture:a", "fixture:b")
	if code != 2 || !strings.Contains(errOut, "no image store at") {
		t.Errorf("no store: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "no-store")); err == nil {
		t.Errorf("diff created a store")
	}
}
