package pusher

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/glob"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher/fetch"
	"github.com/ingotfleet/ingot/triggers"
)

// noManifest is a fetch.Source that has no manifests: a sync through it can
// only end by the quick check.
type noManifest struct{ fetch.Source }

func (noManifest) Manifest(context.Context, images.Digest) ([]byte, error) {
	return nil, errors.New("no manifest here")
}

// TestQuickNoChange: once a full scan found the host at its image, a
// sync to the same image answers from the quick check (no manifest, no
// stat cache); any change a local user makes to a managed path sends the
// next sync back to the full scan, which finds it.
func TestQuickNoChange(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	da, _, _ := f.publishTree(t, treeA)
	root := filepath.Join(t.TempDir(), "root")
	os.MkdirAll(filepath.Join(root, "var/log"), 0o755)
	s := f.syncer(t, root)
	src := f.source(t)
	quick := filepath.Join(s.StateDir, "quick.json")

	if res := s.Sync(ctx, da, src, SyncOptions{}); !res.OK {
		t.Fatalf("sync to A: %s", res.Error)
	}
	if _, err := os.Stat(quick); err != nil {
		t.Fatalf("no quick.json after a sync that committed: %v", err)
	}
	// settle runs no-change syncs until one records the quick check (a
	// path changed in the clock tick of the scan keeps it from it).
	settle := func(what string) {
		t.Helper()
		for i := 0; ; i++ {
			res := s.Sync(ctx, da, src, SyncOptions{})
			if !res.OK || res.Changed != 0 {
				t.Fatalf("%s: no-change sync: %+v", what, res)
			}
			if _, err := os.Stat(quick); err == nil {
				return
			}
			if i == 20 {
				t.Fatalf("%s: no quick.json after %d no-change syncs", what, i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	fast := func(what string) {
		t.Helper()
		os.Remove(filepath.Join(s.StateDir, "manifests", da.String()))
		s.parsed = nil
		if res := s.Sync(ctx, da, noManifest{src}, SyncOptions{}); !res.OK || res.Changed != 0 {
			t.Fatalf("%s: the quick check did not answer: %+v", what, res)
		}
		// A new process (nothing in memory) answers the same way.
		s2 := f.syncer(t, root)
		if res := s2.Sync(ctx, da, noManifest{src}, SyncOptions{}); !res.OK || res.Changed != 0 {
			t.Fatalf("%s: the quick check did not answer in a new agent: %+v", what, res)
		}
	}
	fast("after the sync")

	keepMtime := func(p string, change func(p string)) func() {
		return func() {
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			change(p)
			if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
		}
	}
	at := func(rel string) string { return filepath.Join(root, rel) }
	for _, c := range []struct {
		name   string
		change func()
		drift  string
	}{
		{"content, same size and mtime", keepMtime(at("usr/share/same"), func(p string) {
			os.WriteFile(p, []byte("unchangeD"), 0o644)
		}), "usr/share/same"},
		{"an xattr", func() {
			if err := unix.Lsetxattr(at("usr/bin/su"), "user.note", []byte("x"), 0); err != nil {
				t.Fatal(err)
			}
		}, "usr/bin/su"},
		{"a new file, directory mtime kept", keepMtime(at("usr/lib"), func(p string) {
			os.WriteFile(filepath.Join(p, "stray.so"), []byte("x"), 0o644)
		}), "usr/lib/stray.so"},
		{"owner", func() { os.Lchown(at("etc/passwd"), 5, 5) }, "etc/passwd"},
		{"a directory replaced by a symlink", func() {
			os.Rename(at("etc/ssh"), at("etc/ssh.moved"))
			os.Symlink("/tmp", at("etc/ssh"))
		}, "etc/ssh"},
	} {
		c.change()
		res := s.Sync(ctx, da, src, SyncOptions{})
		if !res.OK || !slices.Contains(res.Drift, c.drift) {
			t.Fatalf("%s: sync after the change: drift %v, want %s in it (%s)", c.name, res.Drift, c.drift, res.Error)
		}
		os.RemoveAll(at("etc/ssh.moved"))
		settle(c.name)
		fast(c.name)
	}

	// A sync to another image reports drift from the record's image
	// (the record does not hide it), and none when there is none.
	db, _, _ := f.publishTree(t, treeB())
	mb, err := f.st.ManifestBytes(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.StateDir, "manifests", da.String()), mb, 0o600) // fast() removed it
	os.WriteFile(at("usr/share/same"), []byte("edited by hand"), 0o644)
	if res := s.Sync(ctx, db, src, SyncOptions{}); !res.OK || !slices.Contains(res.Drift, "usr/share/same") {
		t.Fatalf("sync to B after an edit: drift %v, want usr/share/same (%s)", res.Drift, res.Error)
	}
	if res := s.Sync(ctx, da, src, SyncOptions{}); !res.OK || len(res.Drift) != 0 {
		t.Fatalf("sync back to A: drift %v, want none (%s)", res.Drift, res.Error)
	}

	// A record from another configuration is not used.
	s3 := f.syncer(t, root)
	g, err := glob.Compile("opt/**")
	if err != nil {
		t.Fatal(err)
	}
	s3.Local = append(s3.Local, g)
	os.Remove(filepath.Join(s.StateDir, "manifests", da.String()))
	if res := s3.Sync(ctx, da, noManifest{src}, SyncOptions{}); res.OK {
		t.Fatal("a record made under other local paths answered the quick check")
	}
}

// TestQuickAfterPush: a sync that commits leaves the record (its last
// scan found the host at the image), so the first no-change sync after a
// push is quick; a change made after the push is still found by the next
// sync, and a managed path an after-phase trigger rewrites keeps the
// record from being written.
func TestQuickAfterPush(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	da, _, _ := f.publishTree(t, treeA)
	db, _, _ := f.publishTree(t, treeB())
	root := filepath.Join(t.TempDir(), "root")
	os.MkdirAll(filepath.Join(root, "var/log"), 0o755)
	s := f.syncer(t, root)
	src := f.source(t)
	quick := filepath.Join(s.StateDir, "quick.json")
	if res := s.Sync(ctx, da, src, SyncOptions{}); !res.OK {
		t.Fatalf("sync to A: %s", res.Error)
	}
	for i := 0; i < 5; i++ {
		// A → B → A …: every push leaves the record, and the check after it
		// answers without the manifest, in this agent and a new one.
		d := db
		if i%2 == 1 {
			d = da
		}
		if res := s.Sync(ctx, d, src, SyncOptions{}); !res.OK || res.Changed == 0 {
			t.Fatalf("push %d: %+v", i, res)
		}
		os.Remove(filepath.Join(s.StateDir, "manifests", d.String()))
		s.parsed = nil
		if res := f.syncer(t, root).Sync(ctx, d, noManifest{src}, SyncOptions{}); !res.OK || res.Changed != 0 {
			t.Fatalf("push %d: the first check after it was not quick: %+v", i, res)
		}
		if res := s.Sync(ctx, d, noManifest{src}, SyncOptions{}); !res.OK || res.Changed != 0 {
			t.Fatalf("push %d: the check in the pushing agent was not quick: %+v", i, res)
		}
		mb, err := f.st.ManifestBytes(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(s.StateDir, "manifests", d.String()), mb, 0o600)
	}
	// The host is at A. A change after the push is found by the next sync.
	p := filepath.Join(root, "usr/share/same")
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte("unchangeD"), 0o644)
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	if res := s.Sync(ctx, da, src, SyncOptions{}); !res.OK || !slices.Contains(res.Drift, "usr/share/same") {
		t.Fatalf("sync after an edit: drift %v, want usr/share/same (%s)", res.Drift, res.Error)
	}

	// An after-phase trigger that rewrites a managed path: the push's last
	// scan finds it, no record, and the next sync repairs it.
	r := triggers.Rule{Name: "scribble", Paths: []string{"**"}, Phase: triggers.PhaseAfter,
		Command: []string{"sh", "-c", "echo scribbled >> \"$INGOT_ROOT\"/etc/passwd"}}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	s.Triggers = []triggers.Rule{r}
	if res := s.Sync(ctx, db, src, SyncOptions{}); !res.OK || res.Changed == 0 {
		t.Fatalf("push with the trigger: %+v", res)
	}
	if _, err := os.Stat(quick); err == nil {
		t.Fatal("quick.json written after a trigger changed a managed path")
	}
	s.Triggers = nil
	if res := s.Sync(ctx, db, src, SyncOptions{}); !res.OK || !slices.Contains(res.Drift, "etc/passwd") {
		t.Fatalf("sync after the trigger: drift %v, want etc/passwd (%s)", res.Drift, res.Error)
	}
}
