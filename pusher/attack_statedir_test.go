package pusher

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The agent's journal, stage and backups are reached by path: a state
// directory below a directory another user owns or can write would let
// that user swap them between the agent's steps. The sync refuses to
// start there, naming the directory, and changes nothing in the root.
func TestAttackStateDirWritable(t *testing.T) {
	f := newFixture(t)
	da, _, _ := f.publishTree(t, treeA)
	for _, tc := range []struct {
		name, want string
		prep       func(dir string) error
	}{
		{"writable by others", "writable by group or others", func(dir string) error { return os.Chmod(dir, 0o777) }},
		{"owned by a user", "owned by uid 1000", func(dir string) error { return os.Chown(dir, 1000, 1000) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := attackDir(t)
			root := filepath.Join(base, "root")
			if err := os.MkdirAll(filepath.Join(root, "var/lib"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tc.prep(filepath.Join(root, "var/lib")); err != nil {
				t.Fatal(err)
			}
			s := f.syncer(t, root)
			res := s.Sync(context.Background(), da, f.source(t), SyncOptions{})
			if res.OK || !strings.Contains(res.Error, "state directory") || !strings.Contains(res.Error, tc.want) {
				t.Fatalf("sync with a state directory under %s: want a refusal (%q), got %+v", tc.name, tc.want, res)
			}
			if _, err := os.Lstat(filepath.Join(root, "usr")); err == nil {
				t.Fatal("the refused sync wrote the image into the root")
			}
		})
	}
}
