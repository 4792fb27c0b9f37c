package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/imagetar"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher"
	"github.com/ingotfleet/ingot/pusher/fetch"
)

// TestVerifyRootAgreesWithDrift: `ingot image verify --root` and the
// agent's drift report (a dry-run sync of a host at its image) name the
// same paths for each kind of hand-made change: mode, owner (with its
// names), symlink target, xattr, hardlink, content. Both decide with
// images.DiffKeys.
func TestVerifyRootAgreesWithDrift(t *testing.T) {
	testenv.RequireRoot(t)
	work := t.TempDir()
	sdir := filepath.Join(work, "store")
	ctx := context.Background()
	d := importVerifyTree(t, work, sdir)

	for _, tc := range []struct {
		name   string
		change func(root string) error
		want   string // a path both must name
	}{
		{"mode", func(r string) error { return os.Chmod(filepath.Join(r, "etc/motd"), 0o600) }, "etc/motd"},
		{"owner", func(r string) error { return os.Lchown(filepath.Join(r, "data/owned"), 1001, 1001) }, "data/owned"},
		// The host renames uid 1000 (alice → carol) in its account files:
		// the files stay uid 1000, but both views must name the account
		// files and the files whose owner name changed alike.
		{"owner name", func(r string) error {
			for _, f := range []string{"etc/passwd", "etc/group"} {
				p := filepath.Join(r, f)
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte("alice:"), []byte("carol:")), 0o644); err != nil {
					return err
				}
			}
			return nil
		}, "etc/passwd"},
		{"symlink target", func(r string) error {
			p := filepath.Join(r, "usr/lib/link")
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Symlink("other", p)
		}, "usr/lib/link"},
		{"xattr", func(r string) error {
			return unix.Lsetxattr(filepath.Join(r, "data/x"), "user.k", []byte("changed"), 0)
		}, "data/x"},
		{"xattr removed", func(r string) error { return unix.Lremovexattr(filepath.Join(r, "data/x"), "user.k") }, "data/x"},
		{"hardlink broken", func(r string) error {
			b := filepath.Join(r, "data/b")
			if err := os.Remove(b); err != nil {
				return err
			}
			return exec.Command("cp", "-p", filepath.Join(r, "data/a"), b).Run()
		}, "data/a"},
		{"hardlink made", func(r string) error {
			c := filepath.Join(r, "data/c")
			if err := os.Remove(c); err != nil {
				return err
			}
			return os.Link(filepath.Join(r, "data/x"), c)
		}, "data/x"},
		{"content", func(r string) error {
			p := filepath.Join(r, "data/c")
			if err := os.WriteFile(p, []byte("other content"), 0o644); err != nil {
				return err
			}
			old := time.Unix(1700000000, 0)
			return os.Chtimes(p, old, old)
		}, "data/c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			s, src := syncedHost(t, ctx, sdir, root, d)
			if err := tc.change(root); err != nil {
				t.Fatal(err)
			}
			res := s.Sync(ctx, d, src, pusher.SyncOptions{AllowUnsigned: true, DryRun: true})
			if !res.OK {
				t.Fatalf("dry-run sync: %s", res.Error)
			}
			agent := slices.Clone(res.Drift)
			slices.SortFunc(agent, images.ComparePaths)
			code, out, errOut := runIn(t, sdir, nil, "image", "verify", "host:1", "--root", root, "--json")
			if code != cli.ExitNegative {
				t.Fatalf("verify --root: exit %d, want %d\n%s", code, cli.ExitNegative, errOut)
			}
			var deltas []images.Delta
			if err := json.Unmarshal([]byte(out), &deltas); err != nil {
				t.Fatal(err)
			}
			var verify []string
			for _, dl := range deltas {
				verify = append(verify, dl.Path)
			}
			if !slices.Equal(agent, verify) || !slices.Contains(agent, tc.want) {
				t.Errorf("the agent's drift %q, verify --root %q (both should name %s)\n%s", agent, verify, tc.want, out)
			}
		})
	}
}

// importVerifyTree makes the image host:1 in store sdir from a small tree
// with accounts, a symlink, xattrs and a hardlink group, and returns it.
func importVerifyTree(t *testing.T, work, sdir string) images.Digest {
	t.Helper()
	ctx := context.Background()
	src := filepath.Join(work, "src")
	for _, dir := range []string{"etc", "usr/lib", "data"} {
		if err := os.MkdirAll(filepath.Join(src, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(src, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/:/bin/sh\nbob:x:1001:1001::/:/bin/sh\n"))
	writeFile(t, filepath.Join(src, "etc/group"), []byte("root:x:0:\nalice:x:1000:\nbob:x:1001:\n"))
	writeFile(t, filepath.Join(src, "etc/motd"), []byte("hello\n"))
	writeFile(t, filepath.Join(src, "usr/lib/tool"), []byte("#!/bin/sh\n"))
	writeFile(t, filepath.Join(src, "data/a"), []byte("shared\n"))
	writeFile(t, filepath.Join(src, "data/c"), []byte("content\n"))
	writeFile(t, filepath.Join(src, "data/x"), []byte("with xattr\n"))
	writeFile(t, filepath.Join(src, "data/owned"), []byte("alice's\n"))
	if err := os.Link(filepath.Join(src, "data/a"), filepath.Join(src, "data/b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("tool", filepath.Join(src, "usr/lib/link")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(src, "data/x"), "user.k", []byte("v"), 0); err != nil {
		t.Fatalf("the test needs user xattrs on %s: %v", work, err)
	}
	if err := os.Lchown(filepath.Join(src, "data/owned"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	m, err := images.WalkDir(ctx, src, images.WalkOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(work, "src.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := imagetar.Write(ctx, f, m, images.DirOpener(src)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runIn(t, sdir, nil, "image", "import", tarPath, "--name", "host:1"); code != cli.ExitOK {
		t.Fatal(errOut)
	}
	st, err := store.Open(sdir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, err := st.Resolve(ctx, "host:1")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// syncedHost syncs an empty root to image d of store sdir and returns
// its Syncer and source; nothing on the root is local, the agent's state
// is beside it.
func syncedHost(t *testing.T, ctx context.Context, sdir, root string, d images.Digest) (*pusher.Syncer, fetch.Source) {
	t.Helper()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := fetch.OpenSource([]string{sdir}, fetch.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	s := &pusher.Syncer{Root: root, StateDir: filepath.Join(filepath.Dir(root), "state")}
	if res := s.Sync(ctx, d, src, pusher.SyncOptions{AllowUnsigned: true}); !res.OK {
		t.Fatalf("sync to the image: %s", res.Error)
	}
	if code, out, errOut := runIn(t, sdir, nil, "image", "verify", "host:1", "--root", root); code != cli.ExitOK {
		t.Fatalf("verify --root of the synced host: exit %d\n%s%s", code, out, errOut)
	}
	return s, src
}
