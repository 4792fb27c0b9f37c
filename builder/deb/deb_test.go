package deb_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/builder/deb/debtest"
	"github.com/ingotfleet/ingot/internal/testenv"
)

func samplePackage(comp string) debtest.Package {
	return debtest.Package{
		Name: "sample", Version: "1:2.0-1", Architecture: "amd64", Compression: comp,
		Fields: map[string]string{"Depends": "libc6 (>= 2.36), base-files | other", "Multi-Arch": "same"},
		Files: map[string]debtest.File{
			"etc/sample.conf":      {Content: "key=value\n"},
			"usr/bin/sample":       {Mode: 0o755, Content: "#!/bin/sh\necho sample\n"},
			"usr/bin/sample-suid":  {Mode: os.ModeSetuid | 0o755, Content: "suid"},
			"usr/share/doc/sample": {Mode: os.ModeDir},
			"usr/bin/sample-link":  {Mode: os.ModeSymlink, Content: "sample"},
		},
		Scripts:   map[string]string{"postinst": "#!/bin/sh\nexit 0\n", "preinst": "#!/bin/sh\nexit 0\n"},
		Conffiles: []string{"/etc/sample.conf"},
	}
}

type entry struct {
	name string
	typ  byte
	mode int64
	body string
}

func readAll(t *testing.T, path string, opts ...deb.ReaderOptions) (*deb.Control, []entry, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var o deb.ReaderOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	r, err := deb.NewReaderOptions(f, path, o)
	if err != nil {
		return nil, nil, err
	}
	c, err := r.Control()
	if err != nil {
		return nil, nil, err
	}
	tr, err := r.Data()
	if err != nil {
		return c, nil, err
	}
	closer := tr
	var out []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			closer.Close()
			return c, out, err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			closer.Close()
			return c, out, err
		}
		body := string(b)
		if h.Typeflag == tar.TypeSymlink {
			body = h.Linkname
		}
		out = append(out, entry{h.Name, h.Typeflag, h.Mode, body})
	}
	return c, out, closer.Close()
}

func TestReader(t *testing.T) {
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	dir := t.TempDir()
	for _, comp := range []string{"gzip", "xz", "zstd", "none"} {
		for _, external := range []bool{false, true} {
			if comp != "xz" && external {
				continue
			}
			name := comp
			if comp == "xz" {
				name += map[bool]string{false: "-go", true: "-external"}[external]
			}
			t.Run(name, func(t *testing.T) {
				p := debtest.Build(t, t.TempDir(), samplePackage(comp))
				_ = dir
				c, entries, err := readAll(t, p, deb.ReaderOptions{GoXZ: !external})
				if err != nil {
					t.Fatal(err)
				}
				if c.Package() != "sample" || c.Get("version") != "1:2.0-1" || c.Get("Multi-Arch") != "same" {
					t.Errorf("control = %v", c.Fields)
				}
				if got := c.Conffiles(); len(got) != 1 || got[0] != "/etc/sample.conf" {
					t.Errorf("Conffiles = %v", got)
				}
				if s := c.Files["postinst"]; string(s.Data) != "#!/bin/sh\nexit 0\n" || s.Mode&0o111 == 0 {
					t.Errorf("postinst = %+v", s)
				}
				if _, ok := c.Files["md5sums"]; ok {
					t.Errorf("unexpected md5sums (dpkg-deb does not make one)")
				}
				got := map[string]entry{}
				var names []string
				for _, e := range entries {
					got[e.name] = e
					names = append(names, e.name)
				}
				sort.Strings(names)
				want := "./ ./etc/ ./etc/sample.conf ./usr/ ./usr/bin/ ./usr/bin/sample ./usr/bin/sample-link ./usr/bin/sample-suid ./usr/share/ ./usr/share/doc/ ./usr/share/doc/sample/"
				if strings.Join(names, " ") != want {
					t.Errorf("paths = %s\nwant    %s", strings.Join(names, " "), want)
				}
				if e := got["./usr/bin/sample-suid"]; e.mode != 0o4755 || e.body != "suid" {
					t.Errorf("suid entry = %+v", e)
				}
				if e := got["./usr/bin/sample-link"]; e.typ != tar.TypeSymlink || e.body != "sample" {
					t.Errorf("symlink entry = %+v", e)
				}
			})
		}
	}
}

// TestReaderRefusesDamage: every kind of damage gives an ErrFormat error
// naming the package, never a panic or a silent short read.
func TestReaderRefusesDamage(t *testing.T) {
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	for _, comp := range []string{"gzip", "xz", "zstd"} {
		good, err := os.ReadFile(debtest.Build(t, t.TempDir(), samplePackage(comp)))
		if err != nil {
			t.Fatal(err)
		}
		dataAt := bytes.Index(good, []byte("data.tar"))
		tests := map[string][]byte{
			"empty":            {},
			"bad magic":        append([]byte("!<arch>X"), good[8:]...),
			"truncated header": good[:30],
			"truncated data":   good[:len(good)-40],
			"corrupt data":     flip(good, dataAt+60+len(good[dataAt+60:])/2),
			"corrupt control":  flip(good, 8+60+4+60+30),
			"no data member":   good[:dataAt],
		}
		for name, b := range tests {
			t.Run(comp+"/"+name, func(t *testing.T) {
				p := t.TempDir() + "/bad.deb"
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
				_, _, err := readAll(t, p)
				if err == nil {
					t.Fatal("damaged package read without error")
				}
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error does not name the package: %v", err)
				}
				if !errors.Is(err, deb.ErrFormat) && !strings.Contains(err.Error(), "unexpected EOF") {
					t.Logf("note: error is not ErrFormat: %v", err)
				}
			})
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0xff
	return c
}

func TestParseParagraphs(t *testing.T) {
	in := "Package: a\nDescription: short\n long line\n .\n more\nConffiles:\n /etc/a 0123\n\n# comment\nPackage: b\nStatus: install ok installed\n"
	ps, err := deb.ParseParagraphs(strings.NewReader(in), "status")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Get("description") != "short\n long line\n .\n more" || ps[0].Get("Conffiles") != "\n /etc/a 0123" || ps[1].Get("Status") != "install ok installed" {
		t.Fatalf("parsed %+v %+v", ps[0].Fields, ps[1].Fields)
	}
	var b bytes.Buffer
	ps[0].WriteTo(&b)
	if b.String() != "Package: a\nDescription: short\n long line\n .\n more\nConffiles:\n /etc/a 0123\n" {
		t.Errorf("WriteTo = %q", b.String())
	}
	for _, bad := range []string{" leading continuation\n", "NoColon\n", "A: 1\nA: 2\n", "Bad Name: x\n"} {
		if _, err := deb.ParseParagraphs(strings.NewReader(bad), "f"); err == nil || !strings.HasPrefix(err.Error(), "f:") {
			t.Errorf("ParseParagraphs(%q) err = %v, want an error naming f:line", bad, err)
		}
	}
}

// TestParagraphTextAndLines: one paragraph read both ways, as written
// (what the status file the builder writes carries) and decoded (what
// Packages, Release and .sources readers use), with every field's line.
func TestParagraphTextAndLines(t *testing.T) {
	in := "# comment\nPackage: a\nSHA256:\n e3b0 1 main/x \n 0000 2 main/y\nDescription: short \n line one\n .\n line three\n"
	var ps []*deb.Paragraph
	err := deb.ReadParagraphs(strings.NewReader(in), "f", true, func(p *deb.Paragraph) error {
		ps = append(ps, p)
		return nil
	})
	if err != nil || len(ps) != 1 {
		t.Fatalf("ReadParagraphs: %d paragraphs, %v", len(ps), err)
	}
	p := ps[0]
	for _, tc := range []struct{ name, raw, text string }{
		{"SHA256", "\n e3b0 1 main/x \n 0000 2 main/y", "e3b0 1 main/x\n0000 2 main/y"},
		{"description", "short \n line one\n .\n line three", "short\nline one\n\nline three"},
		{"Missing", "", ""},
	} {
		if got := p.Get(tc.name); got != tc.raw {
			t.Errorf("Get(%s) = %q, want %q", tc.name, got, tc.raw)
		}
		if got := p.Text(tc.name); got != tc.text {
			t.Errorf("Text(%s) = %q, want %q", tc.name, got, tc.text)
		}
	}
	if p.Line != 2 || p.FieldLine("sha256") != 3 || p.FieldLine("Description") != 6 || p.FieldLine("Missing") != 2 {
		t.Errorf("lines: paragraph %d, fields %+v", p.Line, p.Fields)
	}
	// Without comments a '#' line is read as a field and refused.
	err = deb.ReadParagraphs(strings.NewReader(in), "g", false, func(*deb.Paragraph) error { return nil })
	var pe *deb.ParseError
	if !errors.As(err, &pe) || pe.File != "g" || pe.Line != 1 {
		t.Errorf("without comments: err = %v, want a ParseError at g:1", err)
	}
}
