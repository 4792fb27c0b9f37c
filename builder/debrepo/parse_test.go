package debrepo

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

const sampleRelease = `Origin: Debian
Label: Debian
Suite: stable
Codename: bookworm
Date: Sat, 10 Feb 2024 10:23:45 UTC
Acquire-By-Hash: yes
No-Support-for-Architecture-all: Packages
Architectures: all amd64 arm64
Components: main contrib
Description: Debian 12.5 Released 10 February 2024
MD5Sum:
 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all
SHA256:
 3957f28db16e3f28c7b34ae84f1c929c567de6970f3f1b95dac9b498dd80fe63   738242 contrib/Contents-all
 a1ac74ab9e4d6c1a1b8b2e1f4a8e3bb4a8b1c8b0b4c1d0d8d6a9e1f2a3b4c5d6 8786534 main/binary-amd64/Packages.xz
`

func TestParseRelease(t *testing.T) {
	r, err := ParseRelease([]byte(sampleRelease), "InRelease")
	if err != nil {
		t.Fatal(err)
	}
	if r.Codename != "bookworm" || !r.AcquireByHash || !r.NoArchAllPackages || r.Date.Unix() != 1707560625 {
		t.Errorf("parsed %+v", r)
	}
	if f := r.Files["main/binary-amd64/Packages.xz"]; f.Size != 8786534 || !strings.HasPrefix(f.SHA256, "a1ac") {
		t.Errorf("files %+v", r.Files)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"no date", "Date: Sat, 10 Feb 2024 10:23:45 UTC\n", "", "InRelease:1: Date: missing"},
		{"bad date", "Sat, 10 Feb 2024", "Sat, 10 Feb 24", "InRelease:5: Date:"},
		{"bad hash", " a1ac74ab", " z1ac74ab", "InRelease:15: SHA256: \"z1ac"},
		{"bad size", "8786534", "-3", "InRelease:15: SHA256: \"-3\" is not a size"},
		{"unsafe path", "main/binary-amd64/Packages.xz", "../../etc/passwd", "not a safe relative path"},
		{"no sha256", "SHA256:", "SHA1:", "SHA256: missing"},
		{"two paragraphs", "Components: main contrib\n", "Components: main\n\nFoo: bar\n", "want one paragraph, found 2"},
		{"syntax", "Label: Debian\n", "Label Debian\n", "InRelease:2: \"Label Debian\" is not a field"},
		{"repeated field", "Label: Debian\n", "Label: Debian\nlabel: x\n", "InRelease:3: field label repeated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(sampleRelease, tc.old, tc.new, 1)
			_, err := ParseRelease([]byte(in), "InRelease")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

const samplePackages = `Package: coreutils
Version: 9.1-1
Essential: yes
Installed-Size: 18062
Maintainer: Michael Stone <mstone@debian.org>
Architecture: amd64
Replaces: mktemp, realpath, timeout
Pre-Depends: libacl1 (>= 2.2.23), libattr1 (>= 1:2.4.44),
 libc6 (>= 2.34), libgmp10 (>= 2:6.2.1+dfsg1), libselinux1 (>= 3.1~), libssl3 (>= 3.0.0)
Description: GNU core utilities
 This package contains the basic file, shell and text manipulation
 .
 utilities.
Priority: required
Section: utils
Filename: pool/main/c/coreutils/coreutils_9.1-1_amd64.deb
Size: 2873868
SHA256: 61038f857e346e8500adf53a2a0a20859f4d3a3b51570cc876b153a2d51a3091

Package: mawk
Version: 1.3.4.20200120-3.1
Architecture: amd64
Multi-Arch: foreign
Provides: awk
Priority: required
Filename: pool/main/m/mawk/mawk_1.3.4.20200120-3.1_amd64.deb
Size: 119000
SHA256: 0000000000000000000000000000000000000000000000000000000000000000
`

func TestParsePackages(t *testing.T) {
	var got []*Package
	if err := ParsePackages(strings.NewReader(samplePackages), "Packages", func(p *Package) error {
		got = append(got, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d packages", len(got))
	}
	c := got[0]
	if !c.Essential || c.Priority != "required" || c.Size != 2873868 || !strings.HasPrefix(c.PreDepends, "libacl1 (>= 2.2.23), libattr1") || strings.Contains(c.PreDepends, "\n") {
		t.Errorf("coreutils: %+v", c)
	}
	if got[1].MultiArch != "foreign" || got[1].Provides != "awk" {
		t.Errorf("mawk: %+v", got[1])
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"no sha256", "SHA256: 61038f", "SHA1: 61038f", "Packages:1: package coreutils: SHA256"},
		{"bad size", "Size: 119000", "Size: many", "Packages:20: package mawk: Size"},
		{"unsafe filename", "pool/main/m/mawk/", "/etc/", "Filename \"/etc/mawk_1.3.4"},
		{"no package", "Package: mawk\n", "", "Packages:20: paragraph without a Package field"},
		{"stray continuation", "Package: coreutils", " oops\nPackage: coreutils", "Packages:1: continuation line without a field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(samplePackages, tc.old, tc.new, 1)
			err := ParsePackages(strings.NewReader(in), "Packages", func(*Package) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzParsePackages(f *testing.F) {
	f.Add([]byte(samplePackages))
	f.Add([]byte("Package: a\nVersion: 1\nArchitecture: all\nFilename: a.deb\nSize: 1\nSHA256: " + strings.Repeat("0", 64) + "\n\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var n int
		err := ParsePackages(bytes.NewReader(data), "Packages", func(p *Package) error {
			n++
			if p.Name == "" || p.Size < 0 || len(p.SHA256) != 64 || p.Filename == "" || strings.HasPrefix(p.Filename, "/") || strings.Contains("/"+p.Filename+"/", "/../") {
				t.Fatalf("invalid package accepted: %+v", p)
			}
			return nil
		})
		if err != nil && n > 0 && !strings.Contains(err.Error(), "Packages") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

func FuzzParseRelease(f *testing.F) {
	f.Add([]byte(sampleRelease))
	f.Add([]byte("Date: Sat, 10 Feb 2024 10:23:45 UTC\nSHA256:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRelease(data, "InRelease")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "InRelease") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if r.Date.IsZero() {
			t.Fatal("Release without a date accepted")
		}
		for p, fh := range r.Files {
			if p != fh.Path || len(fh.SHA256) != 64 || fh.Size < 0 || strings.HasPrefix(p, "/") {
				t.Fatalf("bad file entry accepted: %+v", fh)
			}
		}
	})
}

func FuzzParseSources(f *testing.F) {
	f.Add([]byte("deb [signed-by=/k.gpg] http://x/ bookworm main\n"), false)
	f.Add([]byte("Types: deb\nURIs: http://x/\nSuites: a b\nComponents: main\nSigned-By: /k.gpg\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, deb822 bool) {
		var srcs []AptSource
		var err error
		if deb822 {
			srcs, err = ParseSourcesDeb822(data, "f.sources")
		} else {
			srcs, err = ParseSourcesList(data, "f.list")
		}
		if err != nil {
			return
		}
		for _, s := range srcs {
			if s.URL == "" || len(s.Suites) == 0 || len(s.Components) == 0 {
				t.Fatalf("incomplete source accepted: %+v", s)
			}
		}
	})
}

func FuzzSplitPackets(f *testing.F) {
	f.Add([]byte{0xc2, 0x03, 1, 2, 3, 0x88, 0x01, 9})
	f.Add([]byte{0x89, 0x00, 0x02, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := splitPackets(data)
		if err != nil {
			return
		}
		if joined := bytes.Join(ps, nil); !bytes.Equal(joined, data) {
			t.Fatalf("packets do not add up to the input")
		}
	})
}

// FuzzVerifyInRelease: whatever a mirror serves as InRelease, verifying it
// against an empty keyring returns an error and never panics (go-crypto's
// clearsign.Decode panics on some malformed messages).
func FuzzVerifyInRelease(f *testing.F) {
	f.Add([]byte("-----BEGIN PGP SIGNED MESSAGE-----\n\n-----BEGIN PGP SIGNATURE-----"))
	f.Add([]byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian\n-----BEGIN PGP SIGNATURE-----\n\niQ==\n-----END PGP SIGNATURE-----\n"))
	f.Add([]byte("Origin: Debian\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, _, err := VerifyInRelease(data, &Keyring{}, time.Unix(1700000000, 0), "InRelease"); err == nil {
			t.Fatal("verified against an empty keyring")
		}
	})
}
