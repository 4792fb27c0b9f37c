package rpm2deb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/debversion"
	"github.com/ingotfleet/ingot/internal/testenv"
)

func TestDebVersion(t *testing.T) {
	for _, tc := range []struct {
		epoch    int64
		hasEpoch bool
		v, r     string
		want     string
	}{
		{0, false, "1.0", "1", "1.0-1"},
		{2, true, "1.0", "1", "2:1.0-1"},
		{0, true, "1.0", "1", "1.0-1"},
		{0, false, "1.0~rc1", "1", "1.0~rc1-1"},
		{0, false, "1.0^git3", "2.el9_1", "1.0+git3-2.el9.1"},
		{0, false, "1_2+3", "", "1.2.3"},
		{0, false, "beta", "1", "0beta-1"},
	} {
		got, _ := DebVersion(tc.epoch, tc.hasEpoch, tc.v, tc.r)
		if got != tc.want {
			t.Errorf("DebVersion(%d %v %q %q) = %q, want %q", tc.epoch, tc.hasEpoch, tc.v, tc.r, got, tc.want)
		}
	}
}

// TestVersionOrder checks that the mapped versions sort under dpkg as the
// originals sort under rpm, asking the real tools: rpm's own vercmp (its
// Lua API) and dpkg --compare-versions.
func TestVersionOrder(t *testing.T) {
	testenv.RequireTool(t, "rpm", "rpm")
	testenv.RequireTool(t, "dpkg", "dpkg")
	pairs := [][2]string{
		{"1.0", "1.0~rc1"}, {"1.0~rc1", "1.0~rc2"}, {"1.0^git1", "1.0"}, {"1.0^git1", "1.0.1"},
		{"1.0_1", "1.0.1"}, {"1.2", "1.10"}, {"1.0", "1.0.0"}, {"2.0~rc1", "2.0"},
		{"1.0^git1", "1.0^git2"}, {"1.0~rc1^git1", "1.0~rc1"}, {"1.0+1", "1.0.1"}, {"10", "9"},
		{"1.0.el9_2", "1.0.el9_10"},
	}
	var lua strings.Builder
	for _, p := range pairs {
		fmt.Fprintf(&lua, "print(tostring(rpm.vercmp(%q, %q)) .. \" \")\n", p[0], p[1])
	}
	out, err := exec.Command("rpm", "--eval", "%{lua:"+lua.String()+"}").CombinedOutput()
	if err != nil {
		t.Fatalf("rpm --eval: %v\n%s", err, out)
	}
	rpmRes := strings.Fields(string(out))
	if len(rpmRes) != len(pairs) {
		t.Fatalf("rpm printed %q", out)
	}
	for i, p := range pairs {
		a, _ := DebVersion(0, false, p[0], "")
		b, _ := DebVersion(0, false, p[1], "")
		var dpkg int
		switch {
		case exec.Command("dpkg", "--compare-versions", a, "lt", b).Run() == nil:
			dpkg = -1
		case exec.Command("dpkg", "--compare-versions", a, "eq", b).Run() == nil:
			dpkg = 0
		default:
			dpkg = 1
		}
		if fmt.Sprint(dpkg) != rpmRes[i] {
			t.Errorf("rpm orders %s vs %s as %s; dpkg orders %s vs %s as %d", p[0], p[1], rpmRes[i], a, b, dpkg)
		}
		if debversion.Compare(a, b) != dpkg {
			t.Errorf("debversion.Compare(%s, %s) = %d, dpkg says %d", a, b, debversion.Compare(a, b), dpkg)
		}
	}
}

// TestVersionedRelations checks the operator mapping, and that the range
// for "= V" (no release) holds every V-R and nothing else, asking dpkg.
func TestVersionedRelations(t *testing.T) {
	testenv.RequireTool(t, "dpkg", "dpkg")
	for _, tc := range []struct {
		flags uint32
		ver   string
		want  string
	}{
		{senseLess, "2.0-1", "p (<< 2.0-1)"},
		{senseGreater, "2.0-1", "p (>> 2.0-1)"},
		{senseEqual, "2.0-1", "p (= 2.0-1)"},
		{senseLess | senseEqual, "1:2.0-1", "p (<= 1:2.0-1)"},
		{senseGreater | senseEqual, "2.0", "p (>= 2.0)"},
		{senseEqual, "2.0", "p (>= 2.0), p (<< 2.0A~)"},
		{senseLess | senseEqual, "2.0", "p (<< 2.0A~)"},
		{senseGreater, "2.0", "p (>> 2.0A~)"},
		{senseLess, "2.0", "p (<< 2.0)"},
		{0, "", "p"},
	} {
		rs, _ := mapVersioned("p", Dep{Name: "P", Flags: tc.flags, Version: tc.ver})
		if got := strings.Join(relStrings(rs), ", "); got != tc.want {
			t.Errorf("%s %s → %q, want %q", rpmOp(tc.flags), tc.ver, got, tc.want)
		}
	}
	sat := func(v, op, w string) bool { return exec.Command("dpkg", "--compare-versions", v, op, w).Run() == nil }
	in := []string{"2.0", "2.0-1", "2.0-0", "2.0-999.el9", "2.0-1~bpo1", "2.0-zz"}
	out := []string{"2.0~rc1-1", "2.0.1-1", "2.0a-1", "2.0A-1", "2.0+1-1", "2.00.1", "1.9-1", "2.1"}
	for _, v := range in {
		if !sat(v, "ge", "2.0") || !sat(v, "lt", "2.0"+afterRelease) {
			t.Errorf("%s should satisfy = 2.0", v)
		}
	}
	for _, v := range out {
		if sat(v, "ge", "2.0") && sat(v, "lt", "2.0"+afterRelease) {
			t.Errorf("%s should not satisfy = 2.0", v)
		}
	}
}

func TestNamesArchSection(t *testing.T) {
	for in, want := range map[string]string{"Hello_World": "hello-world", "perl-Foo-Bar": "perl-foo-bar", "x": "x0", "_x": "0-x", "gtk+3.0": "gtk+3.0"} {
		if got := DebName(in); got != want {
			t.Errorf("DebName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"x86_64": "amd64", "i686": "i386", "noarch": "all", "aarch64": "arm64", "ppc64le": "ppc64el", "armv7hl": "armhf"} {
		if got, _ := DebArch(in); got != want {
			t.Errorf("DebArch(%q) = %q, want %q", in, got, want)
		}
	}
	if _, ok := DebArch("vax"); ok {
		t.Error("DebArch(vax) ok")
	}
	for in, want := range map[string]string{"System Environment/Daemons": "admin", "Development/Libraries": "libdevel", "Applications/Internet": "net", "Unspecified": "misc"} {
		if got, _ := DebSection(in); got != want {
			t.Errorf("DebSection(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShortenSymlink(t *testing.T) {
	for _, tc := range []struct{ link, target, want string }{
		{"usr/lib/.build-id/c8/abc", "../../../../usr/bin/hello", "../../../bin/hello"},
		{"usr/bin/hi", "hello", ""},
		{"usr/bin/hi", "/usr/bin/hello", ""},
		{"usr/libexec/x/y", "../../bin/z", ""},
		{"a/b", "../a/c", "c"},
	} {
		got, ok := shortenSymlink(tc.link, tc.target)
		if !ok {
			got = ""
		}
		if got != tc.want {
			t.Errorf("shortenSymlink(%q, %q) = %q, want %q", tc.link, tc.target, got, tc.want)
		}
	}
}

// newcMember writes one SVR4 newc cpio member.
func newcMember(name string, mode uint32, data []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", 1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	b.WriteString(name + "\x00")
	return cpioPadded(&b, data)
}

// strippedMember writes one of rpm's stripped "07070X" members.
func strippedMember(index int, data []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "07070X%08x", index)
	return cpioPadded(&b, data)
}

// cpioPadded pads the header in b to 4 bytes, then appends data padded
// the same way.
func cpioPadded(b *bytes.Buffer, data []byte) []byte {
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	b.Write(data)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	return b.Bytes()
}

// eachCpioMember calls fn with each member of cr and its data up to the
// trailer, failing t on a read error.
func eachCpioMember(t *testing.T, cr *cpioReader, fn func(h *cpioHeader, data []byte)) {
	t.Helper()
	for {
		h, err := cr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(cr)
		if err != nil {
			t.Fatal(err)
		}
		fn(h, data)
	}
}

// TestCpioStripped reads a stripped archive as rpm ≥ 4.12 writes it for
// large files: sizes come from the RPM header, by file index.
func TestCpioStripped(t *testing.T) {
	sizes := map[int]int64{0: 5, 1: 0, 2: 3}
	var arc bytes.Buffer
	arc.Write(strippedMember(0, []byte("hello")))
	arc.Write(strippedMember(1, nil))
	arc.Write(strippedMember(2, []byte("abc")))
	arc.Write(newcMember("TRAILER!!!", 0, nil))
	cr := newCpioReader(bytes.NewReader(arc.Bytes()), func(i int) (int64, error) {
		s, ok := sizes[i]
		if !ok {
			return 0, fmt.Errorf("no file %d", i)
		}
		return s, nil
	})
	var got []string
	eachCpioMember(t, cr, func(h *cpioHeader, data []byte) {
		got = append(got, fmt.Sprintf("%d=%s", h.Index, data))
	})
	if strings.Join(got, ",") != "0=hello,1=,2=abc" {
		t.Errorf("got %v", got)
	}
	// A file index the header does not have is an error.
	cr = newCpioReader(bytes.NewReader(strippedMember(7, nil)), func(i int) (int64, error) { return 0, fmt.Errorf("no file %d", i) })
	if _, err := cr.Next(); !errors.Is(err, ErrBadCpio) {
		t.Errorf("bad index: %v", err)
	}
}

func TestCpioNewc(t *testing.T) {
	var arc bytes.Buffer
	arc.Write(newcMember("./a", 0o100644, []byte("12345")))
	arc.Write(newcMember("./b", 0o040755, nil))
	arc.Write(newcMember("TRAILER!!!", 0, nil))
	for _, cut := range []int{arc.Len(), arc.Len() - 130, 50, 3} {
		cr := newCpioReader(bytes.NewReader(arc.Bytes()[:cut]), nil)
		var names []string
		var err error
		for {
			var h *cpioHeader
			h, err = cr.Next()
			if err != nil {
				break
			}
			names = append(names, h.Name)
		}
		if cut == arc.Len() {
			if err != io.EOF || strings.Join(names, ",") != "./a,./b" {
				t.Errorf("full archive: %v %v", names, err)
			}
		} else if !errors.Is(err, ErrBadCpio) {
			t.Errorf("cut at %d: %v, want ErrBadCpio", cut, err)
		}
	}
}

// TestChangelogGolden checks WriteChangelog byte for byte (go test
// -update rewrites the golden file).
func TestChangelogGolden(t *testing.T) {
	entries := []ChangelogEntry{
		{Time: 1704110400, Name: "Jane Doe <jane@example.com> - 2:1.4-3", Text: "- Fixed it\n  on two lines\n\n- Another"},
		{Time: 1704110400, Name: "Jane Doe <jane@example.com> - 2:1.4-2", Text: "- Same day"},
		{Time: 1704024000, Name: "Bob <bob@example.org> 1.3-1", Text: "- Older"},
		{Time: 1703937600, Name: "No Email - 1.2-1", Text: "Plain text entry"},
		{Time: 1703851200, Name: "Weird <w@example.org> - not a version!", Text: "- x"},
		{Time: 1703764800, Name: "Newer <n@example.org> - 5.0-1", Text: ""},
	}
	got, notes := WriteChangelog(entries, ChangelogOptions{Package: "pkg", Version: "2:1.4-3", Epoch: 2, HasEpoch: true, Maintainer: "M <m@example.com>"})
	golden := filepath.Join("testdata", "changelog.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("changelog differs from %s:\n%s", golden, got)
	}
	var vers []string
	for _, n := range notes {
		vers = append(vers, n.Version)
	}
	if strings.Join(vers, " ") != "2:1.4-3 2:1.4-2 2:1.3-1 2:1.2-1 2:1.2-1~ 2:1.2-1~~" {
		t.Errorf("versions %v", vers)
	}
}

// TestDecompressLimits: a stream that asks for a huge dictionary is
// refused before the decompressor allocates it.
func TestDecompressLimits(t *testing.T) {
	var xzbuf bytes.Buffer
	zw, err := newCompressor(&xzbuf, CompressXZ)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write([]byte("payload"))
	zw.Close()
	good := xzbuf.Bytes()
	if rc, err := decompress(bytes.NewReader(good), "xz"); err != nil {
		t.Fatalf("good xz: %v", err)
	} else if b, err := io.ReadAll(rc); err != nil || string(b) != "payload" {
		t.Fatalf("good xz: %q %v", b, err)
	}
	i := bytes.Index(good[12:], []byte{0x21, 0x01})
	if i < 0 {
		t.Fatal("no LZMA2 filter in the block header")
	}
	huge := append([]byte(nil), good...)
	huge[12+i+2] = 40 // 4 GiB dictionary
	if _, err := decompress(bytes.NewReader(huge), "xz"); err == nil || !strings.Contains(err.Error(), "dictionary") {
		t.Errorf("huge xz dictionary: %v", err)
	}
	lz := []byte{0x5d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0}
	if _, err := decompress(bytes.NewReader(lz), "lzma"); err == nil || !strings.Contains(err.Error(), "dictionary") {
		t.Errorf("huge lzma dictionary: %v", err)
	}
	if _, err := decompress(bytes.NewReader(good), "brotli"); !errors.Is(err, ErrUnknownCompression) {
		t.Errorf("unknown compressor: %v", err)
	}
	if _, err := decompress(bytes.NewReader(good), "gzip"); !errors.Is(err, ErrUnknownCompression) {
		t.Errorf("xz bytes named gzip: %v", err)
	}
}

func TestRichDependencies(t *testing.T) {
	c := &converter{}
	for in, want := range map[string]string{
		"(foo or bar >= 2.0-1)":      "foo | bar (>= 2.0-1)",
		"(foo and bar < 3)":          "foo, bar (<< 3)",
		"(Foo_Bar or baz)":           "foo-bar | baz",
		"(foo if bar)":               "",
		"((a or b) and c)":           "",
		"(foo or bar = 2.0)":         "",
		"(foo or /usr/bin/x)":        "",
		"(foo or bar and baz)":       "",
		"(foo >= 1 or bar with baz)": "",
		"(foo or)":                   "",
	} {
		got, _ := c.mapRich(Dep{Name: in})
		if strings.Join(got, ", ") != want {
			t.Errorf("mapRich(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNothingBelowASymlink: a package path below a symlink of the same
// package is refused (unpacked, it would land where the symlink points).
func TestNothingBelowASymlink(t *testing.T) {
	c := &converter{name: "x.rpm", byPath: map[string]*debFile{}}
	if err := c.add(&debFile{Path: "srv/x", Type: images.TypeSymlink, Link: "/etc"}); err != nil {
		t.Fatal(err)
	}
	err := c.add(&debFile{Path: "srv/x/passwd", Type: images.TypeFile})
	if !errors.Is(err, images.ErrUnsafePath) {
		t.Errorf("file below a symlink: %v", err)
	}
	if err := c.add(&debFile{Path: "srv/y/z", Type: images.TypeFile}); err != nil {
		t.Errorf("file below a synthesized directory: %v", err)
	}
}
