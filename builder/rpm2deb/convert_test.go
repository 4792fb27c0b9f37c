package rpm2deb

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	rpmlib "github.com/cavaliergopher/rpm"

	"github.com/ingotfleet/ingot/builder/rpm"
	"github.com/ingotfleet/ingot/builder/rpm2deb/debmap"
	"github.com/ingotfleet/ingot/builder/rpm2deb/provides"
	"github.com/ingotfleet/ingot/internal/debversion"
	"github.com/ingotfleet/ingot/internal/testenv"
)

type convertCase struct {
	spec    string
	pkg     string
	version string
	arch    string
	// Fields of the control file, exactly.
	fields map[string]string
}

var convertCases = []convertCase{
	{
		spec: "hello", pkg: "hello-tool", version: "3:1.4.2-3.el9.2", arch: "amd64",
		fields: map[string]string{
			"Depends":    "bash (>= 5.0), coreutils (>> 8A~), libc6 (>= 2.34), libcap2-bin",
			"Provides":   "hello-api (= 2.1)",
			"Conflicts":  "hello-classic (<< 1.0)",
			"Breaks":     "hello-legacy (<= 1.2-1)",
			"Replaces":   "hello-legacy (<= 1.2-1)",
			"Recommends": "hello-plugins",
			"Suggests":   "hello-docs",
			"Maintainer": "Jane Doe <jane@example.com>",
			"Homepage":   "https://example.com/hello",
			"Section":    "admin",
		},
	},
	{
		spec: "hello-doc", pkg: "hello-doc", version: "2.0~rc1-1", arch: "all",
		fields: map[string]string{
			"Depends":    "bash (>= 5.0) | dash, hello-tool (>= 3:1.4.2), hello-tool (<< 3:1.4.2A~), hello-tool (<< 3:2)",
			"Section":    "doc",
			"Maintainer": "Unknown <unknown@rpm2deb.invalid>",
		},
	},
	{
		spec: "tiny", pkg: "tiny", version: "1.0-1", arch: "all",
		fields: map[string]string{"Depends": "", "Section": "misc"},
	},
}

// The resolver cmd/ingot gives the converter.
var _ Resolver = (*provides.DpkgResolver)(nil)

// TestConvert converts each test RPM and checks the .deb against the
// RPM's own header as rpm prints it, with dpkg-deb, dpkg-parsechangelog
// and lintian; converting twice must give the same bytes.
func TestConvert(t *testing.T) {
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	testenv.RequireTool(t, "dpkg-parsechangelog", "dpkg-dev")
	testenv.RequireTool(t, "lintian", "lintian")
	testenv.RequireTool(t, "rpm", "rpm")
	target := provides.NewRootResolver(debianRootDir(t))
	for _, tc := range convertCases {
		t.Run(tc.spec, func(t *testing.T) {
			ctx := context.Background()
			in := buildRPM(t, tc.spec, "")
			out1, out2 := t.TempDir(), t.TempDir()
			rep, err := Convert(ctx, in, Options{OutDir: out1, Resolver: target})
			if err != nil {
				t.Fatal(err)
			}
			deb := rep.Output
			if want := filepath.Join(out1, tc.pkg+"_"+stripEpoch(tc.version)+"_"+tc.arch+".deb"); deb != want {
				t.Fatalf("output %s, want %s", deb, want)
			}
			checkInfo(t, in, deb, tc)
			checkContents(t, in, deb, tc.pkg)
			checkChangelog(t, in, deb, tc.pkg)

			tags, err := Lintian(ctx, deb)
			if err != nil {
				t.Fatal(err)
			}
			rep.Lintian = tags
			var report bytes.Buffer
			if err := rep.WriteText(&report); err != nil {
				t.Fatal(err)
			}
			t.Logf("report:\n%s", report.String())
			for _, tag := range tags {
				if tag.Severity == "E" {
					t.Errorf("lintian error: %s %s", tag.Tag, tag.Info)
				}
			}

			rep2, err := Convert(ctx, in, Options{OutDir: out2, Resolver: target})
			if err != nil {
				t.Fatal(err)
			}
			if !sameFile(t, deb, rep2.Output) {
				t.Errorf("converting twice gave different bytes: %s and %s", deb, rep2.Output)
			}
		})
	}
}

// TestReproducible: SOURCE_DATE_EPOCH sets every mtime; the same epoch
// gives the same bytes in both compressions, another epoch other bytes.
func TestReproducible(t *testing.T) {
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	in := buildRPM(t, "hello", "")
	for _, comp := range []Compression{CompressXZ, CompressGzip} {
		var outs []string
		for _, epoch := range []int64{1600000000, 1600000000, 1500000000} {
			e := epoch
			rep, err := Convert(context.Background(), in, Options{OutDir: t.TempDir(), SourceDateEpoch: &e, Compression: comp})
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, rep.Output)
		}
		if !sameFile(t, outs[0], outs[1]) {
			t.Errorf("compression %d: same SOURCE_DATE_EPOCH, different bytes", comp)
		}
		if sameFile(t, outs[0], outs[2]) {
			t.Errorf("compression %d: different SOURCE_DATE_EPOCH, same bytes", comp)
		}
		contents := run(t, "env", "TZ=UTC", "dpkg-deb", "--contents", outs[2])
		for _, line := range strings.Split(strings.TrimSpace(contents), "\n") {
			if !strings.Contains(line, " 2017-07-14 02:40 ") {
				t.Errorf("mtime not clamped to SOURCE_DATE_EPOCH: %s", line)
			}
		}
	}
}

func stripEpoch(v string) string {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		return v[i+1:]
	}
	return v
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

func checkInfo(t *testing.T, rpmPath, deb string, tc convertCase) {
	t.Helper()
	// What rpm itself prints of the header: the synopsis, the homepage
	// and the description's first line must come through as they are.
	q := strings.Split(run(t, "rpm", "-qp", "--qf", `%{SUMMARY}\n%|URL?{%{URL}}|\n%{DESCRIPTION}`, rpmPath), "\n")
	desc := strings.Split(run(t, "dpkg-deb", "--field", deb, "Description"), "\n")
	if desc[0] != q[0] || strings.TrimSpace(desc[1]) != q[2] {
		t.Errorf("Description %q, RPM Summary %q and description %q", desc[:2], q[0], q[2])
	}
	if home := strings.TrimSpace(run(t, "dpkg-deb", "--field", deb, "Homepage")); home != q[1] {
		t.Errorf("Homepage %q, RPM URL %q", home, q[1])
	}
	want := map[string]string{"Package": tc.pkg, "Version": tc.version, "Architecture": tc.arch}
	for k, v := range tc.fields {
		want[k] = v
	}
	for k, v := range want {
		got := strings.TrimSpace(run(t, "dpkg-deb", "--field", deb, k))
		if got != v {
			t.Errorf("dpkg-deb --field %s: %q, want %q", k, got, v)
		}
	}
	info := run(t, "dpkg-deb", "--info", deb)
	if !strings.Contains(info, "Description: ") {
		t.Errorf("dpkg-deb --info has no Description:\n%s", info)
	}
}

// debEntry is one line of dpkg-deb --contents.
type debEntry struct {
	perms, owner, size, link string
}

func parseContents(t *testing.T, out string) map[string]debEntry {
	t.Helper()
	m := map[string]debEntry{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents line %q", line)
		}
		p := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		if p == "" {
			p = "/"
		}
		e := debEntry{perms: f[0], owner: f[1], size: f[2]}
		if len(f) >= 8 && f[6] == "->" {
			e.link = f[7]
		}
		if len(f) >= 9 && f[6] == "link" {
			e.link = strings.TrimPrefix(f[8], ".")
		}
		m[p] = e
	}
	return m
}

// checkContents compares dpkg-deb --contents with the file list rpm
// itself prints from the RPM's header.
func checkContents(t *testing.T, rpmPath, deb, pkg string) {
	t.Helper()
	contents := parseContents(t, run(t, "dpkg-deb", "--contents", deb))
	q := run(t, "rpm", "-qp", "--qf", `[%{FILENAMES}\t%{FILEMODES:perms}\t%{FILEUSERNAME}/%{FILEGROUPNAME}\t%{FILESIZES}\t%{FILEFLAGS}\t%{FILELINKTOS}\t%{FILEINODES}\n]`, rpmPath)
	seen := map[string]bool{}
	inodes := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(q), "\n") {
		f := strings.Split(line, "\t")
		name, perms, owner, size, flags, link, ino := f[0], f[1], f[2], f[3], f[4], f[5], f[6]
		if flags != "" && atoi(flags)&rpm.FileGhost != 0 {
			if _, ok := contents[name]; ok {
				t.Errorf("%%ghost %s is in the .deb", name)
			}
			continue
		}
		seen[name] = true
		e, ok := contents[name]
		if !ok {
			t.Errorf("%s: in the RPM, not in the .deb", name)
			continue
		}
		if e.owner != owner {
			t.Errorf("%s: owner %s, RPM says %s", name, e.owner, owner)
		}
		switch perms[0] {
		case '-':
			if first, ok := inodes[ino]; ok && strings.HasPrefix(e.perms, "h") {
				if e.link != first {
					t.Errorf("%s: hardlink to %s, want %s", name, e.link, first)
				}
				if e.perms[1:] != perms[1:] {
					t.Errorf("%s: mode %s, RPM says %s", name, e.perms, perms)
				}
				continue
			}
			inodes[ino] = name
			if e.perms != perms || e.size != size {
				t.Errorf("%s: %s %s bytes, RPM says %s %s bytes", name, e.perms, e.size, perms, size)
			}
		case 'l':
			want := path.Join(path.Dir(name), link)
			got := path.Join(path.Dir(name), e.link)
			if e.perms != perms || got != want {
				t.Errorf("%s: %s -> %s, RPM says %s -> %s", name, e.perms, e.link, perms, link)
			}
		default:
			if e.perms != perms {
				t.Errorf("%s: %s, RPM says %s", name, e.perms, perms)
			}
		}
	}
	doc := "/usr/share/doc/" + pkg
	for p, e := range contents {
		if seen[p] || p == doc+"/changelog.Debian.gz" || p == doc+"/copyright" {
			continue
		}
		if e.perms != "drwxr-xr-x" || e.owner != "root/root" {
			t.Errorf("%s: in the .deb only, and not a plain directory: %+v", p, e)
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// checkChangelog: dpkg-parsechangelog lists one entry per RPM changelog
// entry, with the same dates and authors, newest first.
func checkChangelog(t *testing.T, rpmPath, deb, pkg string) {
	t.Helper()
	q := strings.TrimSpace(run(t, "rpm", "-qp", "--qf", `[%{CHANGELOGTIME:day}|%{CHANGELOGNAME}\n]`, rpmPath))
	want := strings.Split(q, "\n")
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", `dpkg-deb --fsys-tarfile "$1" | tar -xO "./usr/share/doc/$2/changelog.Debian.gz" | gzip -dc > "$3"`, "sh", deb, pkg, filepath.Join(dir, "changelog"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("extracting the changelog: %v\n%s", err, out)
	}
	out := run(t, "dpkg-parsechangelog", "-l", filepath.Join(dir, "changelog"), "--all", "--format", "rfc822")
	var versions, maints []string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			versions = append(versions, v)
		}
		if v, ok := strings.CutPrefix(line, "Maintainer: "); ok {
			maints = append(maints, v)
		}
	}
	if len(versions) != len(want) {
		t.Fatalf("dpkg-parsechangelog lists %d entries, the RPM has %d:\n%s", len(versions), len(want), out)
	}
	for i := 1; i < len(versions); i++ {
		if debversion.Compare(versions[i], versions[i-1]) >= 0 {
			t.Errorf("changelog entry %d version %s not lower than %s", i+1, versions[i], versions[i-1])
		}
	}
	for i, w := range want {
		_, name, _ := strings.Cut(w, "|")
		author, email, _ := debmap.ParseChangelogName(name)
		if !strings.HasPrefix(maints[i], author+" <"+email+">") {
			t.Errorf("entry %d: maintainer %q, RPM says %q", i+1, maints[i], name)
		}
	}
}

// TestPayloadCompressions converts tiny.spec built with every payload
// compressor rpmbuild offers.
func TestPayloadCompressions(t *testing.T) {
	for comp := range payloadDefines {
		t.Run(comp, func(t *testing.T) {
			in := buildRPM(t, "tiny", comp)
			rep, err := Convert(context.Background(), in, Options{OutDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Items[3].From != comp+" cpio" {
				t.Errorf("payload item %+v, want %s", rep.Items[3], comp)
			}
			data := run(t, "sh", "-c", `dpkg-deb --fsys-tarfile "$1" | tar -xO ./usr/share/tiny/file`, "sh", rep.Output)
			if data != "tiny\n" {
				t.Errorf("file content %q", data)
			}
		})
	}
}

// TestBadInput: a truncated RPM, an unknown payload compression and cpio
// paths that climb out of the root each give a clear error naming the
// input, and leave no file in the output directory.
func TestBadInput(t *testing.T) {
	good, err := os.ReadFile(buildRPM(t, "tiny", "gzip"))
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := rpmlib.Read(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	_, hdrEnd := pkg.HeaderRange()
	withPayloadName := func(from, to string) []byte {
		return withPayload(t, good, hdrEnd, from+"\x00", to+"\x00")
	}
	withPayloadData := func(from, to string) []byte {
		return withPayload(t, good, hdrEnd, from, to)
	}
	hdr := append([]byte(nil), good[:hdrEnd]...)
	unknown := append(bytes.Replace(hdr, []byte("\x00gzip\x00"), []byte("\x00gzap\x00"), 1), good[hdrEnd:]...)
	if !bytes.Contains(hdr, []byte("\x00/usr/share/tiny/\x00")) {
		t.Fatal("header has no /usr/share/tiny/ directory name")
	}
	dotdotHeader := append(bytes.Replace(hdr, []byte("\x00/usr/share/tiny/\x00"), []byte("\x00/../../../tiny//\x00"), 1), good[hdrEnd:]...)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated header", good[:300], "truncated"},
		{"truncated payload", good[:len(good)-40], "truncated"},
		{"empty", nil, "truncated"},
		{"not an RPM", []byte(strings.Repeat("not an rpm ", 20)), "malformed RPM"},
		{"unknown compression", unknown, `unknown payload compression "gzap"`},
		{"dotdot in cpio", withPayloadName("./usr/share/tiny/file", "./../../../etc/passwd"), "climbs out of the root"},
		{"absolute escaping cpio", withPayloadName("./usr/share/tiny/file", "/../../../etc/passwdx"), "climbs out of the root"},
		{"absolute cpio", withPayloadName("./usr/share/tiny/file", "//usr/share/tiny/file"), "absolute path"},
		{"dotdot in header", dotdotHeader, "climbs out of the root"},
		{"content differs from header digest", withPayloadData("tiny\n", "tinY\n"), "content digest differs"},
		{"payload digest", withPayloadData("tiny\n", "tiny\n"), "payload digest"},
		{"payload member not in header", withPayloadName("./usr/share/tiny/file", "./usr/share/tiny/fil2"), "not in the header's file list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "bad.rpm")
			if err := os.WriteFile(in, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			_, err := Convert(context.Background(), in, Options{OutDir: out})
			if err == nil {
				t.Fatal("converted bad input")
			}
			t.Logf("%v", err)
			if !strings.Contains(err.Error(), in) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want the input's name and %q", err, tc.want)
			}
			if ents, _ := os.ReadDir(out); len(ents) != 0 {
				t.Errorf("output directory holds %v after an error", ents)
			}
		})
	}
}

// TestStrict: scriptlets dpkg cannot run are reported, and fatal with
// Strict (no output file).
func TestStrict(t *testing.T) {
	in := buildRPM(t, "hello-doc", "")
	rep, err := Convert(context.Background(), in, Options{OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var unsupported []string
	for _, it := range rep.Items {
		if it.Action == Unsupported {
			unsupported = append(unsupported, it.What)
		}
	}
	want := []string{"%postun", "%pretrans", "%posttrans", "triggers (%triggerin/%triggerun/%triggerpostun)", "triggers"}
	if strings.Join(unsupported, ",") != strings.Join(want, ",") {
		t.Errorf("unsupported items %q, want %q", unsupported, want)
	}
	out := t.TempDir()
	_, err = Convert(context.Background(), in, Options{OutDir: out, Strict: true})
	if !errors.Is(err, ErrStrict) || !strings.Contains(err.Error(), "%pretrans") {
		t.Errorf("strict: error %v, want ErrStrict naming %%pretrans", err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("strict failure left %v", ents)
	}
}

// TestDevices: device nodes and fifos exist only in the RPM header (%dev);
// their type, mode, owner and major:minor reach the .deb.
func TestDevices(t *testing.T) {
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	rep, err := Convert(context.Background(), buildRPM(t, "devnode", ""), Options{OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	contents := run(t, "dpkg-deb", "--contents", rep.Output)
	for _, want := range []string{
		"brw-rw---- root/disk       7,0 ", "crw-rw-rw- root/root       1,3 ", "prw-r--r-- root/root         0 ",
	} {
		if !strings.Contains(contents, want) {
			t.Errorf("dpkg-deb --contents lacks %q:\n%s", want, contents)
		}
	}
	checkContents(t, buildRPM(t, "devnode", ""), rep.Output, "devnode")
}

// withPayload returns the RPM good (header ending at hdrEnd, gzip
// payload) with from replaced by to (same length) in its cpio payload.
func withPayload(t *testing.T, good []byte, hdrEnd int, from, to string) []byte {
	t.Helper()
	if len(from) != len(to) {
		t.Fatalf("%q and %q differ in length", from, to)
	}
	zr, err := gzip.NewReader(bytes.NewReader(good[hdrEnd:]))
	if err != nil {
		t.Fatal(err)
	}
	cpio, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cpio, []byte(from)) {
		t.Fatalf("payload has no %q", from)
	}
	cpio = bytes.Replace(cpio, []byte(from), []byte(to), 1)
	var buf bytes.Buffer
	buf.Write(good[:hdrEnd])
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(cpio); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
