package plan

import (
	"slices"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
)

// A plan is a pure comparison: these cases run on in-memory trees, no
// root needed (the sync tests of package pusher run plans against real
// roots).

func dir(p string) images.Entry { return images.Entry{Path: p, Type: images.TypeDir, Mode: 0o755} }

func file(p, content string) images.Entry {
	return images.Entry{Path: p, Type: images.TypeFile, Mode: 0o644, Size: int64(len(content)), SHA256: images.Sum([]byte(content))}
}

// base is the image every case starts from.
func base() []images.Entry {
	return []images.Entry{
		dir("."), dir("etc"), file("etc/motd", "hello"), file("etc/hostname", "image"),
		dir("home"), dir("usr"), file("usr/tool", "v1"),
	}
}

func manifest(t *testing.T, es []images.Entry) *images.Manifest {
	t.Helper()
	m, err := images.NewManifest(slices.Clone(es))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// host is a scan that found es.
func host(es []images.Entry) []images.Node {
	var ns []images.Node
	for _, e := range es {
		ns = append(ns, images.Node{Entry: e})
	}
	return ns
}

// edit returns es with the entry at p changed by f (or removed, f nil).
func edit(es []images.Entry, p string, f func(*images.Entry)) []images.Entry {
	out := slices.Clone(es)
	for i := range out {
		if out[i].Path == p {
			if f == nil {
				return slices.Delete(out, i, i+1)
			}
			f(&out[i])
		}
	}
	return out
}

// ops spells a plan's ops "kind path", in order.
func ops(pl *Plan) []string {
	var s []string
	for _, op := range pl.Ops {
		s = append(s, string(op.Kind)+" "+op.Path)
	}
	return s
}

func local(p string) bool {
	return p == "etc/hostname" || p == "home" || strings.HasPrefix(p, "home/")
}

func TestMake(t *testing.T) {
	for _, c := range []struct {
		name          string
		host          []images.Entry
		holdsLocal    string // a host directory the scan saw local paths in
		want          []string
		changed       []string
		refused       bool
		fetch         int
		fetchB, delta bool
	}{
		{name: "at the image", host: base()},
		{
			name:    "content edited",
			host:    edit(base(), "usr/tool", func(e *images.Entry) { *e = file("usr/tool", "v0") }),
			want:    []string{"put usr/tool", "attrs usr"},
			changed: []string{"usr/tool"},
			fetch:   1, fetchB: true, delta: true,
		},
		{
			name:    "mode changed",
			host:    edit(base(), "etc/motd", func(e *images.Entry) { e.Mode = 0o600 }),
			want:    []string{"attrs etc/motd"},
			changed: []string{"etc/motd"},
		},
		{
			name:    "file added by hand",
			host:    append(base(), file("usr/extra", "x")),
			want:    []string{"remove usr/extra", "attrs usr"},
			changed: []string{"usr/extra"},
		},
		{
			name:    "file missing",
			host:    edit(base(), "etc/motd", nil),
			want:    []string{"put etc/motd", "attrs etc"},
			changed: []string{"etc/motd"},
			fetch:   1, fetchB: true,
		},
		{
			name: "local paths left alone",
			host: append(edit(base(), "etc/hostname", func(e *images.Entry) { *e = file("etc/hostname", "host") }),
				file("home/me", "mine")),
		},
		{
			name:       "directory holding local paths replaced",
			host:       append(base(), dir("usr/lib")),
			holdsLocal: "usr/lib",
			refused:    true,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := base()
			if c.refused {
				want = append(want, file("usr/lib", "a file where the host has a directory"))
			}
			h := host(c.host)
			for i := range h {
				h[i].HoldsLocal = h[i].Path == c.holdsLocal
			}
			pl := Make(h, manifest(t, want), Options{Local: local})
			if c.refused {
				if len(pl.Refused) == 0 {
					t.Fatalf("not refused: ops %v", ops(pl))
				}
				return
			}
			if len(pl.Refused) > 0 {
				t.Fatalf("refused: %v", pl.Refused)
			}
			if got := ops(pl); !slices.Equal(got, c.want) {
				t.Errorf("ops = %q, want %q", got, c.want)
			}
			if !slices.Equal(pl.Changed, c.changed) {
				t.Errorf("Changed = %q, want %q", pl.Changed, c.changed)
			}
			if pl.FetchFiles != c.fetch || (pl.FetchBytes > 0) != c.fetchB {
				t.Errorf("fetch %d files, %d bytes; want %d files", pl.FetchFiles, pl.FetchBytes, c.fetch)
			}
			for _, op := range pl.Ops {
				if op.Kind == OpPut && op.DeltaFrom.IsZero() == c.delta {
					t.Errorf("put %s: DeltaFrom %v, want a delta base: %v", op.Path, op.DeltaFrom, c.delta)
				}
				if (op.Kind == OpRemove || (op.Kind == OpPut && c.delta)) && op.Backup == "" {
					t.Errorf("%s %s replaces a host file but keeps no backup", op.Kind, op.Path)
				}
			}
		})
	}
}

// Drift is what changed by hand since the host was at its image: nothing
// at the image, the edited paths otherwise, never a local path.
func TestDrift(t *testing.T) {
	cur := manifest(t, base())
	opts := Options{Local: local}
	if d := Drift(host(base()), cur, opts); len(d) != 0 {
		t.Errorf("Drift at the image = %q", d)
	}
	edited := edit(base(), "etc/motd", func(e *images.Entry) { *e = file("etc/motd", "edited") })
	edited = edit(edited, "etc/hostname", func(e *images.Entry) { *e = file("etc/hostname", "local") })
	if d := Drift(host(edited), cur, opts); !slices.Equal(d, []string{"etc/motd"}) {
		t.Errorf("Drift = %q, want [etc/motd]", d)
	}
	if d := Drift(host(edited), nil, opts); d != nil {
		t.Errorf("Drift without a current image = %q", d)
	}
}
