package commit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/beneath"
	"github.com/ingotfleet/ingot/pusher/fetch"
	"github.com/ingotfleet/ingot/pusher/plan"
)

// These tests stage and commit in temporary directories as the user
// running them; the crash, attack and sync tests of package pusher run
// the same code under a Syncer, as root, against whole roots.

func entry(p, content string) *images.Entry {
	return &images.Entry{Path: p, Type: images.TypeFile, Mode: 0o644, UID: os.Geteuid(), GID: os.Getegid(),
		Size: int64(len(content)), SHA256: images.Sum([]byte(content)), Mtime: 1700000000}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fixture is a root with files "a" (old) and "gone", an empty stage and
// backup directory, and a Stager recording its crash points in steps.
type fixture struct {
	root, stage, backup string
	stg                 *Stager
	steps               []string
}

func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	f := &fixture{root: filepath.Join(dir, "root"), stage: filepath.Join(dir, "stage"), backup: filepath.Join(dir, "backup")}
	for _, d := range []string{f.root, f.stage, f.backup} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(f.root, "a"), "old")
	writeFile(t, filepath.Join(f.root, "gone"), "x")
	sd, err := beneath.Open(f.stage)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sd.Close() })
	f.stg = &Stager{Stage: sd, Hooks: f.hooks()}
	return f
}

func (f *fixture) hooks() Hooks {
	return Hooks{Crash: func(step string) { f.steps = append(f.steps, step) }}
}

func (f *fixture) stageContent(t *testing.T, name string, e *images.Entry, content string) error {
	return f.stg.StageFile(context.Background(), name, e, func(w fetch.Sink) error {
		_, err := w.Write([]byte(content))
		return err
	})
}

// A staged file is whole or absent: content that does not match its entry
// is refused (fetch.ErrCorrupt) and leaves nothing behind.
func TestStageFile(t *testing.T) {
	f := newFixture(t)
	e := entry("a", "new")
	if err := f.stageContent(t, "s1", e, "new"); err != nil {
		t.Fatal(err)
	}
	if !f.stg.Exists("s1") || readFile(t, filepath.Join(f.stage, "s1")) != "new" || f.stg.Written.Load() != 3 {
		t.Fatalf("staged file missing or wrong (written %d)", f.stg.Written.Load())
	}
	fi, err := os.Stat(filepath.Join(f.stage, "s1"))
	if err != nil || fi.Mode().Perm() != 0o644 || fi.ModTime().Unix() != 1700000000 {
		t.Errorf("staged file attributes: %v, %v", fi.Mode(), err)
	}
	err = f.stageContent(t, "s2", e, "bad")
	if !errors.Is(err, fetch.ErrCorrupt) {
		t.Errorf("wrong content: %v, want fetch.ErrCorrupt", err)
	}
	if ents, _ := os.ReadDir(f.stage); len(ents) != 1 {
		t.Errorf("stage holds %d files after a refused one, want 1", len(ents))
	}
	if !slices.Contains(f.steps, "staged") {
		t.Errorf("crash points %q: no \"staged\"", f.steps)
	}
}

// Run puts staged files in place and moves what they replace or remove
// into the backup directory.
func TestRun(t *testing.T) {
	f := newFixture(t)
	e := entry("a", "new")
	if err := f.stageContent(t, "s1", e, "new"); err != nil {
		t.Fatal(err)
	}
	j := &Journal{Stage: f.stage, Backup: f.backup, Ops: []plan.Op{
		{Kind: plan.OpPut, Path: "a", Stage: "s1", Backup: "b1", Entry: e},
		{Kind: plan.OpRemove, Path: "gone", Backup: "b2"},
	}}
	if err := Run(context.Background(), f.root, j, f.hooks()); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(f.root, "a")); got != "new" {
		t.Errorf("a = %q, want new", got)
	}
	if _, err := os.Lstat(filepath.Join(f.root, "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("gone still there: %v", err)
	}
	if readFile(t, filepath.Join(f.backup, "b1")) != "old" || readFile(t, filepath.Join(f.backup, "b2")) != "x" {
		t.Error("backups do not hold what the commit replaced")
	}
	// Every op can run again (recovery replays the journal).
	if err := Run(context.Background(), f.root, j, Hooks{}); err != nil {
		t.Errorf("second run: %v", err)
	}
	if got := readFile(t, filepath.Join(f.root, "a")); got != "new" {
		t.Errorf("after a second run a = %q, want new", got)
	}
}

// An op that fails undoes the ops done before it: the root is back at
// its old state and the staged file back in the stage.
func TestRunUndo(t *testing.T) {
	f := newFixture(t)
	e := entry("a", "new")
	if err := f.stageContent(t, "s1", e, "new"); err != nil {
		t.Fatal(err)
	}
	j := &Journal{Stage: f.stage, Backup: f.backup, Ops: []plan.Op{
		{Kind: plan.OpPut, Path: "a", Stage: "s1", Backup: "b1", Entry: e},
		{Kind: plan.OpPut, Path: "c", Stage: "never-staged", Entry: entry("c", "c")},
	}}
	err := Run(context.Background(), f.root, j, Hooks{})
	var ce *Error
	if !errors.As(err, &ce) || !ce.Undone {
		t.Fatalf("Run = %v, want an undone *Error", err)
	}
	if got := readFile(t, filepath.Join(f.root, "a")); got != "old" {
		t.Errorf("a = %q after undo, want old", got)
	}
	if !f.stg.Exists("s1") {
		t.Error("the staged file did not go back to the stage")
	}
}
