package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseSpec(f *testing.F) {
	f.Add([]byte("name: m\n"))
	f.Add([]byte("name: server\nrepositories:\n  - url: http://deb.debian.org/debian\n    suites: [bookworm]\n    keyring: k.gpg\npackages: [a, b=1.0, c:amd64]\nexclude: [/usr/share/doc/*]\nkeep: [/usr/share/doc/*/copyright]\nsource-date-epoch: 1\n"))
	for _, p := range []string{"../../examples/minimal.yaml", "../../examples/server.yaml"} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("f.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		if len(s.Architectures) == 0 || s.Variant == "" {
			t.Fatal("defaults not applied")
		}
		_ = s.ResolveDigest()
	})
}

func FuzzParseLock(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("testdata", "sample.lock")); err == nil {
		f.Add(data)
	}
	f.Add([]byte("version: 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLock("f.lock", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.lock") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, p := range l.Packages {
			if !SafeFilename(p.Filename) {
				t.Fatalf("unsafe filename accepted: %q", p.Filename)
			}
		}
		// A valid lock writes and parses back to the same bytes.
		var a, b bytes.Buffer
		if err := l.Write(&a); err != nil {
			t.Fatalf("valid lock does not write: %v", err)
		}
		l2, err := ParseLock("again.lock", a.Bytes())
		if err != nil {
			t.Fatalf("written lock does not parse: %v\n%s", err, a.Bytes())
		}
		if err := l2.Write(&b); err != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("lock round trip differs: %v\n%s\n---\n%s", err, a.Bytes(), b.Bytes())
		}
	})
}
