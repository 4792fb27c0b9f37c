package images

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// baseEntries is a small image that the Compare cases change.
func baseEntries() []Entry {
	f := func(p, content string) Entry {
		return Entry{Path: p, Type: TypeFile, Mode: 0o644, Uname: "root", Gname: "root", Size: int64(len(content)), SHA256: Sum([]byte(content)), Mtime: 100}
	}
	return []Entry{
		{Path: ".", Type: TypeDir, Mode: 0o755, Mtime: 100},
		{Path: "bin", Type: TypeSymlink, Mode: 0o777, Link: "usr/bin", Mtime: 100},
		{Path: "etc", Type: TypeDir, Mode: 0o755, Mtime: 100},
		f("etc/a", "a"),
		{Path: "etc/b", Type: TypeHardlink, Link: "etc/a"},
		f("etc/c", "c"),
		{Path: "etc/d", Type: TypeHardlink, Link: "etc/a"},
		{Path: "dev", Type: TypeDir, Mode: 0o755, Mtime: 100},
		{Path: "dev/null", Type: TypeChar, Mode: 0o666, DevMajor: 1, DevMinor: 3, Mtime: 100},
		f("ping", ""),
	}
}

func mustManifest(t *testing.T, entries []Entry) *Manifest {
	t.Helper()
	m, err := NewManifest(entries)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// edit returns base with fn applied to the entry at p (removed if fn
// returns false).
func edit(entries []Entry, p string, fn func(e *Entry) bool) []Entry {
	out := []Entry{}
	for _, e := range entries {
		e = e.Clone()
		if e.Path == p && !fn(&e) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// summary is a Delta as one line: "changed etc/a [mode time]".
func summary(ds []Delta) []string {
	var s []string
	for _, d := range ds {
		line := d.Kind.String() + " " + d.Path
		if len(d.Keys) > 0 {
			line += " [" + strings.Join(d.Keys, " ") + "]"
		}
		s = append(s, line)
	}
	return s
}

func TestCompare(t *testing.T) {
	base := baseEntries()
	tests := []struct {
		name string
		new  []Entry
		opts CompareOptions
		want []string
	}{
		{"same", base, CompareOptions{}, nil},
		{"mode-and-time", edit(base, "etc/c", func(e *Entry) bool { e.Mode = 0o600; e.Mtime = 5; return true }), CompareOptions{},
			[]string{"changed etc/c [mode time]"}},
		{"ignore-mtime", edit(base, "etc/c", func(e *Entry) bool { e.Mtime = 5; return true }), CompareOptions{IgnoreMtime: true}, nil},
		{"owner", edit(base, "etc/c", func(e *Entry) bool { e.UID, e.Uname, e.GID = 7, "x", 8; return true }), CompareOptions{},
			[]string{"changed etc/c [uid gid uname]"}},
		{"content-through-hardlinks", edit(base, "etc/a", func(e *Entry) bool { e.Size, e.SHA256 = 2, Sum([]byte("aa")); return true }), CompareOptions{},
			[]string{"changed etc/a [size sha256digest]", "changed etc/b [size sha256digest]", "changed etc/d [size sha256digest]"}},
		{"xattrs", edit(base, "ping", func(e *Entry) bool { e.Xattrs = map[string]string{XattrCapability: "x", "user.b": ""}; return true }), CompareOptions{},
			[]string{"changed ping [xattr.security.capability xattr.user.b]"}},
		{"symlink-target", edit(base, "bin", func(e *Entry) bool { e.Link = "/usr/bin"; return true }), CompareOptions{},
			[]string{"changed bin [link]"}},
		{"device", edit(base, "dev/null", func(e *Entry) bool { e.DevMinor = 5; return true }), CompareOptions{},
			[]string{"changed dev/null [device]"}},
		{"type", edit(base, "dev/null", func(e *Entry) bool { e.Type, e.DevMajor, e.DevMinor = TypeFifo, 0, 0; return true }), CompareOptions{},
			[]string{"changed dev/null [type device]"}},
		{"leaves-link-group", edit(base, "etc/d", func(e *Entry) bool { *e = base[3].Clone(); e.Path = "etc/d"; return true }), CompareOptions{},
			[]string{"changed etc/a [hardlink]", "changed etc/b [hardlink]", "changed etc/d [hardlink]"}},
		{"removed-and-added", edit(edit(base, "etc/c", func(e *Entry) bool { return false }), "ping", func(e *Entry) bool { e.Path = "pong"; return true }), CompareOptions{},
			[]string{"removed etc/c", "removed ping", "added pong"}},
		{"exclude", edit(base, "etc/c", func(e *Entry) bool { return false }), CompareOptions{Exclude: func(p string) bool { return strings.HasPrefix(p, "etc/") }}, nil},
	}
	a := mustManifest(t, base)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustManifest(t, tt.new)
			got := summary(Compare(a, b, tt.opts))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestCompareResolvesHardlinks(t *testing.T) {
	base := baseEntries()
	a := mustManifest(t, base)
	b := mustManifest(t, edit(base, "etc/d", func(e *Entry) bool { return false }))
	d := Compare(a, b, CompareOptions{})
	if len(d) != 3 || d[0].Path != "etc/a" || d[2].Kind != Removed {
		t.Fatalf("%v", summary(d))
	}
	// etc/b: a hardlink, shown with its file's attributes and its group.
	x := d[1]
	if x.Old.Type != TypeFile || x.Old.Path != "etc/b" || x.Old.SHA256 != Sum([]byte("a")) {
		t.Errorf("old side of etc/b: %+v", x.Old)
	}
	if !slices.Equal(x.OldLinks, []string{"etc/a", "etc/d"}) || !slices.Equal(x.NewLinks, []string{"etc/a"}) {
		t.Errorf("links %q → %q", x.OldLinks, x.NewLinks)
	}
	// The deltas are copies: changing them leaves the manifests alone.
	x.Old.Mode = 0
	if a.Lookup("etc/a").Mode != 0o644 {
		t.Error("a Delta shares memory with its manifest")
	}
}

// TestDeltaJSON pins the JSON form of deltas to a golden file and reads
// it back.
func TestDeltaJSON(t *testing.T) {
	base := baseEntries()
	a := mustManifest(t, base)
	next := edit(base, "ping", func(e *Entry) bool {
		e.Xattrs = map[string]string{XattrCapability: "\x01\x00\xff"}
		e.Mode = 0o4755
		return true
	})
	next = edit(next, "etc/c", func(e *Entry) bool { return false })
	next = append(next, Entry{Path: "dev/sda", Type: TypeBlock, Mode: 0o660, GID: 6, Gname: "disk", DevMajor: 8, Mtime: 100})
	ds := Compare(a, mustManifest(t, next), CompareOptions{})
	got, err := json.MarshalIndent(ds, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "deltas.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -update)", err)
	}
	if !bytes.Equal(append(got, '\n'), want) {
		t.Fatalf("JSON differs from %s:\n%s", golden, got)
	}
	var back []Delta
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.MarshalIndent(back, "", "  ")
	if !bytes.Equal(again, got) {
		t.Fatalf("JSON does not round-trip:\n%s", again)
	}
	if back[len(back)-1].New.Xattrs[XattrCapability] != "\x01\x00\xff" {
		t.Fatal("xattr bytes lost")
	}
}
