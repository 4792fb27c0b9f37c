package images

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func sampleManifest(t testing.TB) *Manifest {
	t.Helper()
	m, err := NewManifest([]Entry{
		{Path: ".", Type: TypeDir, Mode: 0o755, Uname: "root", Gname: "root", Mtime: 100},
		{Path: "usr", Type: TypeDir, Mode: 0o755, Uname: "root", Gname: "root", Mtime: 100},
		{Path: "usr/bin", Type: TypeDir, Mode: 0o755, Mtime: 100},
		{Path: "usr/bin/[", Type: TypeFile, Mode: 0o755, Size: 3, SHA256: Sum([]byte("abc")), Mtime: 100},
		{Path: "usr/bin/a b#c", Type: TypeHardlink, Link: "usr/bin/["},
		{Path: "usr/bin/ping", Type: TypeFile, Mode: 0o4755, Size: 0, SHA256: Sum(nil), Mtime: 100,
			Xattrs: map[string]string{XattrCapability: "\x01\x00\x00\x02\x00\x20\x00\x00", "user.é": ""}},
		{Path: "usr/bin/sh", Type: TypeSymlink, Mode: 0o777, Link: "../../bin/da sh", Mtime: 100},
		{Path: "dev", Type: TypeDir, Mode: 0o755, Mtime: 100},
		{Path: "dev/null", Type: TypeChar, Mode: 0o666, DevMajor: 1, DevMinor: 3, Mtime: 100},
		{Path: "dev/sda", Type: TypeBlock, Mode: 0o660, GID: 6, Gname: "disk", DevMajor: 8, DevMinor: 0, Mtime: 100},
		{Path: "dev/initctl", Type: TypeFifo, Mode: 0o600, Mtime: 100},
		{Path: "dev/log", Type: TypeSocket, Mode: 0o666, Mtime: 100},
		{Path: "tmp", Type: TypeDir, Mode: 0o1777, Mtime: 100},
		{Path: "caf\xc3\xa9\n", Type: TypeFile, Mode: 0o644, UID: 1000, GID: 1000, Size: 1, SHA256: Sum([]byte("x")), Mtime: -5},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestManifestRoundTrip(t *testing.T) {
	m := sampleManifest(t)
	text := m.Bytes()
	for _, c := range text {
		if c != '\n' && (c < ' ' || c > '~') {
			t.Fatalf("manifest has non-printable byte %q:\n%s", c, text)
		}
	}
	p, err := ParseManifest(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	if got := p.Bytes(); !bytes.Equal(got, text) {
		t.Fatalf("round trip differs:\n%s\n---\n%s", text, got)
	}
	if p.Digest() != m.Digest() {
		t.Fatal("digest changed")
	}
	for i := range m.Entries {
		if !m.Entries[i].Equal(&p.Entries[i]) {
			t.Errorf("entry %d: %+v != %+v", i, m.Entries[i], p.Entries[i])
		}
	}
	if !strings.Contains(string(text), `./usr/bin/\133 type=file`) {
		t.Errorf("glob character not escaped:\n%s", text)
	}
}

func TestManifestRejects(t *testing.T) {
	const h = ManifestHeader + "\n. type=dir mode=0755 uid=0 gid=0 time=0.000000000\n"
	for name, tc := range map[string]struct {
		text string
		want error
	}{
		"dotdot":          {h + "./../etc type=dir mode=0755 uid=0 gid=0 time=0\n", ErrUnsafePath},
		"absolute":        {h + "/etc type=dir mode=0755 uid=0 gid=0 time=0\n", nil},
		"through symlink": {h + "./a type=link mode=0777 uid=0 gid=0 link=/etc time=0.000000000\n./a/passwd type=file mode=0644 uid=0 gid=0 size=0 sha256digest=" + Sum(nil).String() + " time=0.000000000\n", ErrUnsafePath},
		"unsorted":        {h + "./b type=dir mode=0755 uid=0 gid=0 time=0\n./a type=dir mode=0755 uid=0 gid=0 time=0\n", nil},
		"no parent":       {h + "./a/b type=dir mode=0755 uid=0 gid=0 time=0\n", nil},
		"unknown keyword": {h + "./a type=dir mode=0755 uid=0 gid=0 time=0 color=red\n", nil},
		"hardlink later":  {h + "./a type=hardlink link=./b\n./b type=file mode=0644 uid=0 gid=0 size=0 sha256digest=" + Sum(nil).String() + " time=0\n", nil},
		"no header":       {". type=dir mode=0755 uid=0 gid=0 time=0\n", nil},
		"bad escape":      {h + "./a\\9 type=dir mode=0755 uid=0 gid=0 time=0\n", nil},
		// v2 is read only in the form ingot writes it.
		"needless escape":    {h + "./\\141 type=dir mode=0755 uid=0 gid=0 time=0.000000000\n", nil},
		"bare glob":          {h + "./a* type=dir mode=0755 uid=0 gid=0 time=0.000000000\n", nil},
		"short time":         {h + "./a type=dir mode=0755 uid=0 gid=0 time=0\n", nil},
		"keyword order":      {h + "./a type=dir uid=0 mode=0755 gid=0 time=0.000000000\n", nil},
		"double space":       {h + "./a type=dir  mode=0755 uid=0 gid=0 time=0.000000000\n", nil},
		"blank line":         {h + "\n./a type=dir mode=0755 uid=0 gid=0 time=0.000000000\n", nil},
		"comment":            {h + "#x\n./a type=dir mode=0755 uid=0 gid=0 time=0.000000000\n", nil},
		"xattrs unsorted":    {h + "./a type=dir mode=0755 uid=0 gid=0 time=0.000000000 xattr.user.b=AA== xattr.user.a=AA==\n", nil},
		"xattr twice":        {h + "./a type=dir mode=0755 uid=0 gid=0 time=0.000000000 xattr.user.a=AA== xattr.user.a=AA==\n", nil},
		"xattr name with =":  {h + "./a type=dir mode=0755 uid=0 gid=0 time=0.000000000 xattr.user.a=b=AA==\n", nil},
		"xattr needless esc": {h + "./a type=dir mode=0755 uid=0 gid=0 time=0.000000000 xattr.user\\056a=AA==\n", nil},
		"path too long":      {h + "./" + strings.Repeat("a", 256) + " type=dir mode=0755 uid=0 gid=0 time=0.000000000\n", ErrTooLong},
		"old order in v2":    {h + "./a type=dir mode=0755 uid=0 gid=0 time=0.000000000\n./a-b type=dir mode=0755 uid=0 gid=0 time=0.000000000\n./a/c type=dir mode=0755 uid=0 gid=0 time=0.000000000\n", nil},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseManifest(strings.NewReader(tc.text))
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v is not %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "manifest line ") {
				t.Errorf("error does not name the line: %v", err)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add(sampleManifest(f).Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(bytes.NewReader(data))
		if err != nil {
			return
		}
		text := m.Bytes()
		m2, err := ParseManifest(bytes.NewReader(text))
		if err != nil {
			t.Fatalf("canonical text does not parse: %v\n%s", err, text)
		}
		if !bytes.Equal(m2.Bytes(), text) {
			t.Fatal("canonical text is not stable")
		}
	})
}

func TestComparePaths(t *testing.T) {
	// Each list is in order; every pair is compared both ways.
	for _, order := range [][]string{
		{".", "a", "a/b", "a-b", "a.b"},
		{".", "-", "a"}, // the root before names that sort below '.'
		{".", "usr", "usr/share", "usr/share/perl", "usr/share/perl/LangTags", "usr/share/perl/LangTags/List.pm", "usr/share/perl/LangTags.pm"},
		{".", "a", "a/\x01", "a/b", "a\x01"},
		{".", "a", "a/b", "a/b/c", "a/bc", "ab"},
		{".", "\x7f", "\xff", "\xff/a", "\xff\x00"},
	} {
		for i, a := range order {
			for j, b := range order {
				want := 0
				if i < j {
					want = -1
				} else if i > j {
					want = 1
				}
				if got := ComparePaths(a, b); got != want {
					t.Errorf("ComparePaths(%q, %q) = %d, want %d", a, b, got, want)
				}
			}
		}
	}
}

// TestManifestV1Reads: a manifest of the first version, whose entries are
// sorted by whole-path bytes, still reads; its entries come back in the
// v2 order and its text is then v2.
func TestManifestV1Reads(t *testing.T) {
	const d = " type=dir mode=0755 uid=0 gid=0 time=0"
	v1 := "#ingot manifest v1\n\n# a comment\n." + d + "\n./a" + d + "\n./a-b" + d +
		" xattr.user.x=AA==\n./a-b/f type=file mode=0644 uid=0 gid=0 size=0 sha256digest=" + Sum(nil).String() +
		" time=0\n./a/c" + d + "\n./a/c/h type=hardlink link=./a-b/f\n./a\\056b  type=dir mode=755 uid=0 gid=0 time=0.000000000\n"
	m, err := ParseManifest(strings.NewReader(v1))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range m.Entries {
		got = append(got, e.Path)
	}
	if want := []string{".", "a", "a/c", "a/c/h", "a-b", "a-b/f", "a.b"}; !slices.Equal(got, want) {
		t.Fatalf("entries %q, want %q", got, want)
	}
	// The hardlink now comes first: it carries the file.
	if h, f := m.Lookup("a/c/h"), m.Lookup("a-b/f"); h.Type != TypeFile || f.Type != TypeHardlink || f.Link != "a/c/h" {
		t.Errorf("hardlink group not led by its first path: %+v %+v", h, f)
	}
	text := m.Bytes()
	if !bytes.HasPrefix(text, []byte(ManifestHeader+"\n")) || ManifestHeader == "#ingot manifest v1" {
		t.Fatalf("v1 input is written as:\n%s", text)
	}
	if _, err := ParseManifest(bytes.NewReader(text)); err != nil {
		t.Fatalf("its v2 text does not read back: %v\n%s", err, text)
	}
}

func TestValidateTooLong(t *testing.T) {
	root := Entry{Path: ".", Type: TypeDir, Mode: 0o755}
	long := func(n int) string { return strings.Repeat("x", n) }
	deep := func(n int) string { // a path of n bytes made of names of 100
		var parts []string
		for l := 0; l < n; l += 101 {
			parts = append(parts, long(min(100, n-l)))
		}
		return strings.Join(parts, "/")
	}
	for name, tc := range map[string]struct {
		e    Entry
		want bool // too long
	}{
		"name 255":         {Entry{Path: long(255), Type: TypeDir}, false},
		"name 256":         {Entry{Path: long(256), Type: TypeDir}, true},
		"path 4095":        {Entry{Path: deep(4095), Type: TypeFifo}, false},
		"path 4096":        {Entry{Path: deep(4096), Type: TypeFifo}, true},
		"symlink 4095":     {Entry{Path: "l", Type: TypeSymlink, Link: long(4095)}, false},
		"symlink 4096":     {Entry{Path: "l", Type: TypeSymlink, Link: long(4096)}, true},
		"xattr name 255":   {Entry{Path: "f", Type: TypeFifo, Xattrs: map[string]string{"user." + long(250): ""}}, false},
		"xattr name 256":   {Entry{Path: "f", Type: TypeFifo, Xattrs: map[string]string{"user." + long(251): ""}}, true},
		"xattr value 64K":  {Entry{Path: "f", Type: TypeFifo, Xattrs: map[string]string{"user.x": long(64 << 10)}}, false},
		"xattr value 64K1": {Entry{Path: "f", Type: TypeFifo, Xattrs: map[string]string{"user.x": long(64<<10 + 1)}}, true},
	} {
		t.Run(name, func(t *testing.T) {
			var entries []Entry
			entries = append(entries, root)
			for p := Parent(tc.e.Path); p != "."; p = Parent(p) {
				entries = append(entries, Entry{Path: p, Type: TypeDir, Mode: 0o755})
			}
			entries = append(entries, tc.e)
			m, err := NewManifest(entries)
			if !tc.want {
				if err != nil {
					t.Fatal(err)
				}
				// What Validate takes, the parser takes.
				if _, err := ParseManifest(bytes.NewReader(m.Bytes())); err != nil {
					t.Fatalf("parse: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrTooLong) {
				t.Fatalf("NewManifest: %v, want ErrTooLong", err)
			}
			// The parser refuses the same entry written out.
			bad := &Manifest{Entries: entries}
			bad.Sort()
			if _, err := ParseManifest(bytes.NewReader(bad.Bytes())); !errors.Is(err, ErrTooLong) {
				t.Fatalf("ParseManifest: %v, want ErrTooLong", err)
			}
		})
	}
}

// BenchmarkParseManifest reads a manifest of 20,000 entries (the size of a
// Debian root) written by Manifest.Write.
func BenchmarkParseManifest(b *testing.B) {
	entries := []Entry{{Path: ".", Type: TypeDir, Mode: 0o755}}
	for d := range 200 {
		dir := "usr/share/pkg-" + strconv.Itoa(d)
		if d == 0 {
			entries = append(entries, Entry{Path: "usr", Type: TypeDir, Mode: 0o755}, Entry{Path: "usr/share", Type: TypeDir, Mode: 0o755})
		}
		entries = append(entries, Entry{Path: dir, Type: TypeDir, Mode: 0o755, Mtime: 1700000000})
		for f := range 99 {
			entries = append(entries, Entry{Path: dir + "/file-" + strconv.Itoa(f) + ".txt", Type: TypeFile, Mode: 0o644,
				Uname: "root", Gname: "root", Size: int64(f), SHA256: Sum([]byte{byte(f)}), Mtime: 1700000000})
		}
	}
	m, err := NewManifest(entries)
	if err != nil {
		b.Fatal(err)
	}
	text := m.Bytes()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := ParseManifest(bytes.NewReader(text)); err != nil {
			b.Fatal(err)
		}
	}
}
