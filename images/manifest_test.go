package images

import (
	"bytes"
	"errors"
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
		"through symlink": {h + "./a type=link mode=0777 uid=0 gid=0 link=/etc time=0\n./a/passwd type=file mode=0644 uid=0 gid=0 size=0 sha256digest=" + Sum(nil).String() + " time=0\n", ErrUnsafePath},
		"unsorted":        {h + "./b type=dir mode=0755 uid=0 gid=0 time=0\n./a type=dir mode=0755 uid=0 gid=0 time=0\n", nil},
		"no parent":       {h + "./a/b type=dir mode=0755 uid=0 gid=0 time=0\n", nil},
		"unknown keyword": {h + "./a type=dir mode=0755 uid=0 gid=0 time=0 color=red\n", nil},
		"hardlink later":  {h + "./a type=hardlink link=./b\n./b type=file mode=0644 uid=0 gid=0 size=0 sha256digest=" + Sum(nil).String() + " time=0\n", nil},
		"no header":       {". type=dir mode=0755 uid=0 gid=0 time=0\n", nil},
		"bad escape":      {h + "./a\\9 type=dir mode=0755 uid=0 gid=0 time=0\n", nil},
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
