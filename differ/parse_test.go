package differ

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/internal/testenv"
)

func TestCompareVersions(t *testing.T) {
	dpkg := testenv.RequireTool(t, "dpkg", "dpkg")
	pairs := [][2]string{
		{"1.0", "1.0"}, {"1.0", "1.0-1"}, {"1.0~rc1", "1.0"}, {"1:0.1", "2.0"}, {"1.0a", "1.0"},
		{"1.0+deb12u1", "1.0"}, {"20250419~deb12u2", "20250419"}, {"3.0.20-1~deb12u2", "3.0.22-1~deb12u2"},
		{"1.0.9-2+b6", "1.0.9-2+deb12u1"}, {"2.6.1", "2.6.2"}, {"5.36.0-7+deb12u3", "5.36.0-7+deb12u4"},
		{"1.01", "1.1"}, {"1.001-1", "1.1-1"}, {"1.0~~", "1.0~"}, {"0:1.0", "1.0"}, {"1.2.10", "1.2.9"},
		{"2026b-0+deb12u1", "2026f-0+deb12u1"}, {"1.0-1.1", "1.0-1+b1"}, {"a", "b"}, {"1.0-", "1.0"},
	}
	for _, p := range pairs {
		got := CompareVersions(p[0], p[1])
		if _, err := ParseVersion(p[0]); err != nil {
			if got != -1 {
				t.Errorf("CompareVersions(%q, %q) = %d: an invalid version sorts first", p[0], p[1], got)
			}
			continue
		}
		for op, want := range map[string]bool{"lt": got < 0, "eq": got == 0, "gt": got > 0} {
			err := exec.Command(dpkg, "--compare-versions", p[0], op, p[1]).Run()
			if (err == nil) != want {
				t.Errorf("CompareVersions(%q, %q) = %d, but dpkg --compare-versions %s says %v", p[0], p[1], got, op, err == nil)
			}
		}
	}
}

func TestDecodeCapabilityAgainstGetcap(t *testing.T) {
	testenv.RequireRoot(t)
	setcap := testenv.RequireTool(t, "setcap", "libcap2-bin")
	getcap := testenv.RequireTool(t, "getcap", "libcap2-bin")
	dir := t.TempDir()
	for i, caps := range []string{
		"cap_net_raw=ep", "cap_net_admin,cap_net_raw=ep", "cap_sys_admin=p", "cap_chown,cap_kill=eip",
		"cap_bpf,cap_perfmon=ep", "cap_setuid=i", "cap_dac_override=ei",
	} {
		f := filepath.Join(dir, "f"+string(rune('a'+i)))
		if err := os.WriteFile(f, nil, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(setcap, caps, f).CombinedOutput(); err != nil {
			t.Fatalf("setcap %s: %v %s", caps, err, out)
		}
		out, err := exec.Command(getcap, f).Output()
		if err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), f))
		v := make([]byte, 64)
		n, err := unix.Getxattr(f, "security.capability", v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeCapability(v[:n])
		if err != nil || got != want {
			t.Errorf("setcap %s: decoded %q, %v; getcap says %q", caps, got, err, want)
		}
	}
}

func TestDecodeCapability(t *testing.T) {
	for _, tc := range []struct {
		name, value, want string
	}{
		{"v2 net_raw ep", "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "cap_net_raw=ep"},
		{"v3 with rootid", "\x01\x00\x00\x03\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xe8\x03\x00\x00", "cap_net_raw=ep [rootid=1000]"},
		{"v2 high word", "\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00", "cap_checkpoint_restore=p"},
		{"short", "\x01\x00", "error"},
		{"v2 wrong length", "\x01\x00\x00\x02\x00\x20\x00\x00", "error"},
		{"unknown revision", "\x00\x00\x00\x09\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeCapability([]byte(tc.value))
			if err != nil {
				got = "error"
			}
			if got != tc.want {
				t.Errorf("got %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

const sampleChangelog = `hello (2.10-3) unstable; urgency=medium

  * Fix the thing.

  * Fix the other thing.

 -- Jane Doe <jane@example.org>  Sun, 01 Feb 2026 10:00:00 +0000

hello (2.10-2+b1) sid; urgency=low, binary-only=yes

  * Binary-only non-maintainer upload for amd64.

 -- amd64 Build Daemon (x86-ubc-02) <buildd_amd64-x86-ubc-02@buildd.debian.org>  Mon, 02 Jan 2026 10:00:00 +0000

hello (2.9-1) experimental; urgency=low

  * Initial.

 -- Jane Doe <jane@example.org>  Thu, 01 Jan 2025 00:00:00 +0000

Local variables:
mode: debian-changelog
End:
`

func TestParseChangelog(t *testing.T) {
	entries, err := ParseChangelog("sample", []byte(sampleChangelog))
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, e := range entries {
		vs = append(vs, e.Version)
	}
	if !slices.Equal(vs, []string{"2.10-3", "2.10-2+b1", "2.9-1"}) {
		t.Fatalf("versions %v", vs)
	}
	if e := entries[0]; e.Changes != "  * Fix the thing.\n\n  * Fix the other thing." || e.Maintainer != "Jane Doe <jane@example.org>" ||
		e.Date != "Sun, 01 Feb 2026 10:00:00 +0000" || e.Distributions != "unstable" || e.Metadata != "urgency=medium" {
		t.Errorf("first entry %+v", e)
	}
	if e := entries[1]; e.Maintainer != "amd64 Build Daemon (x86-ubc-02) <buildd_amd64-x86-ubc-02@buildd.debian.org>" {
		t.Errorf("buildd maintainer %q", e.Maintainer)
	}
	for _, tc := range []struct {
		old, new string
		want     []string
	}{
		{"2.10-2+b1", "2.10-3", []string{"2.10-3"}},
		{"2.9-1", "2.10-3", []string{"2.10-3", "2.10-2+b1"}},
		{"", "2.10-2+b1", []string{"2.10-2+b1"}},
		{"2.10-3", "2.10-3", nil},
	} {
		var got []string
		for _, e := range EntriesBetween(entries, tc.old, tc.new) {
			got = append(got, e.Version)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("EntriesBetween(%q, %q) = %v, want %v", tc.old, tc.new, got, tc.want)
		}
	}
	for _, tc := range []struct{ name, text, want string }{
		{"empty", "", "no changelog entries"},
		{"no header", "garbage\n", "line 1: want an entry header"},
		{"no trailer", "a (1.0) unstable; urgency=low\n\n  * x\n", "ends without a trailer"},
		{"unindented", "a (1.0) unstable; urgency=low\n\n* x\n", "line 3: change lines must be indented"},
		{"next header first", "a (1.0) unstable; urgency=low\n  * x\na (0.9) unstable; urgency=low\n", "line 3: entry a (1.0) has no trailer"},
		{"bad trailer", "a (1.0) unstable; urgency=low\n  * x\n -- nobody\n", "line 3: malformed trailer"},
		{"bad version", "a (:1.0) unstable; urgency=low\n", "line 1: version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseChangelog("cl", []byte(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "cl") {
				t.Errorf("error %v, want one naming cl and saying %q", err, tc.want)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	status := "Package: a\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\nConffiles:\n /etc/a.conf 0123\n /etc/b.conf 4567 obsolete\n\n" +
		"Package: gone\nStatus: deinstall ok config-files\nVersion: 2.0\n\n" +
		"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\nArchitecture: amd64\nMulti-Arch: same\nSource: glibc\n\n" +
		"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\nArchitecture: i386\nMulti-Arch: same\nSource: glibc\n"
	pkgs, err := ParseStatus("status", []byte(status))
	if err != nil {
		t.Fatal(err)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range pkgs {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(names, []string{"a", "libc6:amd64", "libc6:i386"}) {
		t.Errorf("packages %v", names)
	}
	if c := pkgs["a"].Conffiles; !slices.Equal(c, []string{"/etc/a.conf", "/etc/b.conf"}) {
		t.Errorf("conffiles %v", c)
	}
	for _, tc := range []struct{ name, text, want string }{
		{"no package", "Status: install ok installed\nVersion: 1\n", "line 1: paragraph without a Package field"},
		{"bad status", "Package: a\nStatus: installed\nVersion: 1\n", "malformed Status"},
		{"bad version", "Package: a\nStatus: install ok installed\nVersion: :1\n", "bad epoch"},
		{"continuation first", " x\n", "line 1: continuation line"},
		{"no colon", "Package: a\nnonsense\n", "line 2: want \"Field: value\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseStatus("status", []byte(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzParseChangelog(f *testing.F) {
	f.Add([]byte(sampleChangelog))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseChangelog("fuzz", data)
		if err != nil {
			return
		}
		for _, e := range entries {
			if _, err := ParseVersion(e.Version); err != nil {
				t.Fatalf("entry with invalid version %q", e.Version)
			}
		}
		// The text of the entries parses back to the same entries.
		var b strings.Builder
		for _, e := range entries {
			b.WriteString(e.Text())
			b.WriteString("\n")
		}
		again, err := ParseChangelog("again", []byte(b.String()))
		if err != nil {
			t.Fatalf("re-parsing %q: %v", b.String(), err)
		}
		if !slices.Equal(again, entries) {
			t.Fatalf("round trip changed the entries:\n%+v\n%+v", entries, again)
		}
		EntriesBetween(entries, entries[len(entries)-1].Version, entries[0].Version)
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("Package: a\nStatus: install ok installed\nVersion: 1.0\nConffiles:\n /etc/a 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParseStatus("fuzz", data)
		if err != nil {
			return
		}
		for k, p := range pkgs {
			if p.Name == "" || !strings.HasPrefix(k, p.Name) {
				t.Fatalf("package %q under key %q", p.Name, k)
			}
		}
	})
}

func FuzzDecodeCapability(f *testing.F) {
	f.Add([]byte("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if s, err := DecodeCapability(data); err == nil && s == "" {
			t.Fatal("decoded to nothing without an error")
		}
	})
}

func FuzzCompareVersions(f *testing.F) {
	f.Add("1.0~rc1-1", "1:1.0-1+b1")
	f.Fuzz(func(t *testing.T, a, b string) {
		if CompareVersions(a, b) != -CompareVersions(b, a) {
			t.Fatalf("CompareVersions(%q, %q) is not antisymmetric", a, b)
		}
		if CompareVersions(a, a) != 0 {
			t.Fatalf("CompareVersions(%q, %q) != 0", a, a)
		}
	})
}
