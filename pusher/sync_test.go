package pusher

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher/signing"
	"github.com/ingotfleet/ingot/triggers"
)

var treeA = tree{
	"etc":                 "dir",
	"etc/hostname":        "file:image-host\n",
	"etc/passwd":          "file:root:x:0:0::/root:/bin/sh\n",
	"etc/ssh":             "dir",
	"etc/ssh/sshd_config": "file:Port 22\n",
	"etc/gone":            "file:removed in B\n",
	"etc/old-dir":         "dir",
	"etc/old-dir/f":       "file:x",
	"usr":                 "dir",
	"usr/bin":             "dir",
	"usr/bin/tool":        "file:#!/bin/sh\necho v1\n|mode=0755",
	"usr/bin/su":          "file:setuid|mode=4755",
	"usr/bin/ping":        "file:cap|xattr=user.cap=v1",
	"usr/bin/alias":       "hard:usr/bin/tool",
	"usr/lib":             "dir",
	"usr/lib/libz.so.1":   "big:300000",
	"usr/lib/libz.so":     "link:libz.so.1",
	"usr/share":           "dir",
	"usr/share/same":      "file:unchanged|uid=7",
	"usr/share/typechg":   "file:becomes a dir",
	"dev":                 "dir",
	"dev/null":            "char:1:3|mode=0666",
	"run":                 "dir",
	"run/initctl":         "fifo|mode=0600",
	"var":                 "dir",
	"var/log":             "dir",
	"var/log/image.log":   "file:from the image",
}

func treeB() tree {
	b := tree{}
	for k, v := range treeA {
		b[k] = v
	}
	delete(b, "etc/gone")
	delete(b, "etc/old-dir")
	delete(b, "etc/old-dir/f")
	delete(b, "usr/share/typechg")
	b["usr/share/typechg"] = "dir"
	b["usr/share/typechg/inner"] = "file:now inside"
	b["etc/ssh/sshd_config"] = "file:Port 2222\n"
	b["usr/bin/tool"] = "file:#!/bin/sh\necho v2\n|mode=0755"
	b["usr/bin/ping"] = "file:cap|xattr=user.cap=v2"
	b["usr/bin/su"] = "file:setuid|mode=4750"
	b["usr/lib/libz.so.1"] = "big:300001"
	b["usr/lib/libz.so"] = "link:libz.so.1.2"
	b["usr/new"] = "file:new in B"
	b["etc/ingot"] = "dir"
	b["etc/ingot/triggers.d"] = "dir"
	b["etc/ingot/triggers.d/base.yaml"] = `file:triggers:
  - name: sshd
    paths: ["/etc/ssh/**", "/usr/sbin/sshd"]
    command: ["sh", "-c", "echo sshd >> $INGOT_ROOT/../triggers.log"]
  - name: ldconfig
    paths: ["usr/lib/**/*.so*"]
    command: ["sh", "-c", "echo ldconfig >> $INGOT_ROOT/../triggers.log"]
  - name: boot
    paths: ["boot/**"]
    command: ["sh", "-c", "echo boot >> $INGOT_ROOT/../triggers.log"]
`
	return b
}

func TestSyncRollback(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	da, ma, srcA := f.publishTree(t, treeA)
	db, mb, srcB := f.publishTree(t, treeB())
	if st, err := f.st.ComputeDeltas(ctx, da, db); err != nil || st.Deltas == 0 {
		t.Fatalf("ComputeDeltas: %+v %v", st, err)
	}

	root := filepath.Join(t.TempDir(), "root")
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("host-1\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "srv/data"), 0o755)
	os.WriteFile(filepath.Join(root, "srv/data/db"), []byte("precious"), 0o600)
	os.MkdirAll(filepath.Join(root, "var/log"), 0o755)
	os.WriteFile(filepath.Join(root, "var/log/syslog"), []byte("host log"), 0o644)
	os.WriteFile(filepath.Join(root, "stray"), []byte("not in any image"), 0o644)
	s := f.syncer(t, root)
	src := f.source(t)

	checkAt := func(name, srcRoot string) {
		t.Helper()
		if d := rsyncDiff(t, srcRoot, root, rsyncExcludes...); d != "" {
			t.Fatalf("after %s, root differs from the image (rsync):\n%s", name, d)
		}
		if b, _ := os.ReadFile(filepath.Join(root, "etc/hostname")); string(b) != "host-1\n" {
			t.Fatalf("after %s, local path etc/hostname = %q", name, b)
		}
		if b, _ := os.ReadFile(filepath.Join(root, "srv/data/db")); string(b) != "precious" {
			t.Fatalf("after %s, srv/data/db = %q", name, b)
		}
		if b, _ := os.ReadFile(filepath.Join(root, "var/log/syslog")); string(b) != "host log" {
			t.Fatalf("after %s, var/log/syslog = %q", name, b)
		}
	}

	res := s.Sync(ctx, da, src, SyncOptions{})
	if !res.OK {
		t.Fatalf("sync to A: %s", res.Error)
	}
	checkAt("sync to A", srcA)
	if diff, err := s.VerifyRoot(ctx, ma); err != nil || len(diff) != 0 {
		t.Fatalf("VerifyRoot A: %v %v", diff, err)
	}

	// Drift: someone edits a file by hand.
	os.WriteFile(filepath.Join(root, "usr/share/same"), []byte("edited"), 0o644)
	res = s.Sync(ctx, db, src, SyncOptions{})
	if !res.OK {
		t.Fatalf("sync to B: %s", res.Error)
	}
	if !slices.Contains(res.Drift, "usr/share/same") {
		t.Errorf("drift = %v, want usr/share/same in it", res.Drift)
	}
	if res.Deltas == 0 {
		t.Errorf("no file came from a delta: %+v", res)
	}
	checkAt("sync to B", srcB)
	log, _ := os.ReadFile(filepath.Join(root, "../triggers.log"))
	if got := strings.Fields(string(log)); !slices.Equal(got, []string{"ldconfig", "sshd"}) {
		t.Errorf("triggers fired: %v, want [ldconfig sshd]", got)
	}

	// A no-change sync changes nothing and fires nothing.
	res = s.Sync(ctx, db, src, SyncOptions{})
	if !res.OK || res.Changed != 0 || res.Fetched != 0 || len(res.Triggers) != 0 {
		t.Fatalf("no-change sync: %+v", res)
	}

	res = s.Rollback(ctx)
	if !res.OK {
		t.Fatalf("rollback: %s", res.Error)
	}
	// The rollback restores A, but usr/share/same was edited by hand on A
	// and B's sync fixed it; rollback restores A's version.
	checkAt("rollback", srcA)
	if diff, _ := s.VerifyRoot(ctx, mb); len(diff) == 0 {
		t.Fatal("root still at B after rollback")
	}
	res = s.Rollback(ctx)
	if !res.OK {
		t.Fatalf("rollback of the rollback: %s", res.Error)
	}
	checkAt("second rollback", srcB)
	if diff, _ := s.VerifyRoot(ctx, mb); len(diff) != 0 {
		t.Fatalf("VerifyRoot B: %v", diff)
	}
}

func TestSyncRefusesBadImages(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	da, _, _ := f.publishTree(t, treeA)
	other, _ := signing.Generate("mallory")

	cases := []struct {
		name  string
		setup func() // changes the store
		want  error
	}{
		{"unsigned", func() { f.st.Backend().Delete(ctx, store.DigestHandle(store.KindSignature, da)) }, signing.ErrUntrusted},
		{"wrong key", func() { f.sign(t, da, other) }, signing.ErrUntrusted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.setup()
			root := t.TempDir()
			os.WriteFile(filepath.Join(root, "keep"), []byte("x"), 0o644)
			s := f.syncer(t, root)
			res := s.Sync(ctx, da, f.source(t), SyncOptions{})
			if res.OK || !strings.Contains(res.Error, "trusted key") {
				t.Fatalf("sync accepted: %+v", res)
			}
			if b, err := os.ReadFile(filepath.Join(root, "keep")); err != nil || string(b) != "x" {
				t.Fatal("refused sync changed the root")
			}
			_ = errors.Is
		})
	}
}

func TestSyncRefusesUnsafeManifests(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	put := func(es []images.Entry) images.Digest {
		m := &images.Manifest{Entries: es}
		b := m.Bytes()
		d := images.Sum(b)
		// Around PutManifest, which refuses such manifests.
		f.st.PutRaw(ctx, store.DigestHandle(store.KindObject, d), b)
		f.st.PutRaw(ctx, store.DigestHandle(store.KindImage, d), nil)
		f.sign(t, d, f.key)
		return d
	}
	content := []byte("owned\n")
	sha, _, err := f.st.PutFile(ctx, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	root := images.Entry{Path: ".", Type: images.TypeDir, Mode: 0o755}
	file := func(p string) images.Entry {
		return images.Entry{Path: p, Type: images.TypeFile, Mode: 0o644, Size: int64(len(content)), SHA256: sha}
	}
	outside := t.TempDir()
	cases := map[string]images.Digest{
		"path climbing out": put([]images.Entry{root, file("../escaped")}),
		"absolute path":     put([]images.Entry{root, file("/escaped")}),
		"through a symlink": put([]images.Entry{root, {Path: "etc", Type: images.TypeSymlink, Mode: 0o777, Link: outside}, file("etc/escaped")}),
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			r := filepath.Join(dir, "root")
			os.MkdirAll(r, 0o755)
			s := f.syncer(t, r)
			res := s.Sync(ctx, d, f.source(t), SyncOptions{})
			if res.OK {
				t.Fatal("sync accepted an unsafe manifest")
			}
			if !strings.Contains(res.Error, "unsafe") && !strings.Contains(res.Error, "not a directory") {
				t.Errorf("error does not say why: %s", res.Error)
			}
			for _, p := range []string{filepath.Join(dir, "escaped"), "/escaped", filepath.Join(outside, "escaped")} {
				if _, err := os.Lstat(p); err == nil {
					t.Fatalf("%s was written", p)
				}
			}
		})
	}
}

// A failing before-phase trigger stops the sync with the host unchanged;
// a failing after-phase trigger fails the sync (unhealthy) with its
// output, after the commit.
func TestTriggerFailures(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	da, _, srcA := f.publishTree(t, treeA)
	db, _, srcB := f.publishTree(t, treeB())
	for _, phase := range []triggers.Phase{triggers.PhaseBefore, triggers.PhaseAfter} {
		t.Run(string(phase), func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			os.MkdirAll(root, 0o755)
			s := f.syncer(t, root)
			if res := s.Sync(ctx, da, f.source(t), SyncOptions{}); !res.OK {
				t.Fatal(res.Error)
			}
			r := triggers.Rule{Name: "veto", Paths: []string{"usr/**"}, Phase: phase,
				Command: []string{"sh", "-c", "echo refusing $(wc -l < \"$INGOT_CHANGED_FILE\") paths; exit 1"}}
			if err := r.Validate(); err != nil {
				t.Fatal(err)
			}
			s.Triggers = []triggers.Rule{r}
			res := s.Sync(ctx, db, f.source(t), SyncOptions{})
			if res.OK || !strings.Contains(res.Error, "trigger veto") || !strings.Contains(res.Error, "refusing") {
				t.Fatalf("sync: ok=%v error=%q", res.OK, res.Error)
			}
			want := srcA
			if phase == triggers.PhaseAfter {
				want = srcB
			}
			if d := rsyncDiff(t, want, root, rsyncExcludes...); d != "" {
				t.Fatalf("root after a failing %s trigger:\n%s", phase, d)
			}
		})
	}
}
