package commit

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/beneath"
	"github.com/ingotfleet/ingot/pusher/plan"
	"golang.org/x/sys/unix"
)

// Journal is written, complete and synced, before a commit's first
// rename. While it exists the commit is unfinished; recovery runs its ops
// again (each op is idempotent), which can only end at the new image.
type Journal struct {
	From       images.Digest `json:"from"`
	To         images.Digest `json:"to"`
	Generation int           `json:"generation"`
	Stage      string        `json:"stage"`  // directory of staged files
	Backup     string        `json:"backup"` // directory of what the commit replaced
	Ops        []plan.Op     `json:"ops"`
	// Changed is what after-phase triggers match against; recovery runs
	// them when a crash came before they did.
	Changed []string `json:"changed,omitempty"`
}

// committer runs a journal's ops against a root. Every op resolves its
// path beneath the root's descriptor without following symlinks, and
// works with *at calls on the parent's descriptor: a parent swapped for a
// symlink at any moment makes the op fail, never act elsewhere.
type committer struct {
	root   *beneath.Dir
	stage  *beneath.Dir
	backup *beneath.Dir
	j      *Journal
	hooks  Hooks
}

// openCommitter opens the root, stage and backup directories of j.
func openCommitter(root string, j *Journal, h Hooks) (*committer, error) {
	c := &committer{j: j, hooks: h}
	var err error
	if c.root, err = beneath.Open(root); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(j.Stage, 0o700); err != nil {
		c.Close()
		return nil, err
	}
	if c.stage, err = beneath.Open(j.Stage); err != nil {
		c.Close()
		return nil, err
	}
	if err := os.MkdirAll(j.Backup, 0o700); err != nil {
		c.Close()
		return nil, err
	}
	if c.backup, err = beneath.Open(j.Backup); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *committer) Close() {
	c.root.Close()
	c.stage.Close()
	c.backup.Close()
}

// moveAside moves name (in dirfd) into the backup directory, once.
func (c *committer) moveAside(dirfd int, name, backup, what string) error {
	if !beneath.Exists(dirfd, name) {
		return nil
	}
	if beneath.Exists(c.backup.Fd(), backup) {
		// An earlier run moved the old one aside already; what is there
		// now is not the old version, and not ours: set it aside too.
		for k := 1; ; k++ {
			extra := fmt.Sprintf("%s.%d", backup, k)
			if beneath.Exists(c.backup.Fd(), extra) {
				continue
			}
			if err := unix.Renameat(dirfd, name, c.backup.Fd(), extra); err != nil {
				return fmt.Errorf("commit: moving %s aside: %w", what, err)
			}
			return nil
		}
	}
	if err := unix.Renameat(dirfd, name, c.backup.Fd(), backup); err != nil {
		return fmt.Errorf("commit: moving %s aside: %w", what, err)
	}
	c.hooks.crash("aside")
	return nil
}

func (c *committer) run(op *plan.Op) error {
	c.hooks.race(string(op.Kind), op.Path)
	pfd, name, err := c.root.Parent(op.Path)
	if err != nil {
		if op.Kind == plan.OpRemove && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR)) {
			// Its parent is gone or was replaced by a non-directory: the
			// path is gone already.
			return nil
		}
		return fmt.Errorf("commit: parent of %s: %w", op.Path, err)
	}
	defer unix.Close(pfd)
	switch op.Kind {
	case plan.OpMkdir:
		if st, err := beneath.Lstat(pfd, name); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return nil
		}
		if err := c.moveAside(pfd, name, op.Backup, op.Path); err != nil {
			return err
		}
		if err := unix.Mkdirat(pfd, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("commit: mkdir %s: %w", op.Path, err)
		}
	case plan.OpPut:
		if !beneath.Exists(c.stage.Fd(), op.Stage) {
			if beneath.Exists(pfd, name) {
				return nil // done by an earlier run
			}
			return fmt.Errorf("commit: staged file for %s is missing", op.Path)
		}
		if err := c.moveAside(pfd, name, op.Backup, op.Path); err != nil {
			return err
		}
		if err := unix.Renameat(c.stage.Fd(), op.Stage, pfd, name); err != nil {
			return fmt.Errorf("commit: putting %s in place: %w", op.Path, err)
		}
	case plan.OpLink:
		if done, err := c.link(pfd, name, op); err != nil || done {
			return err
		}
	case plan.OpRemove:
		if done, err := c.remove(pfd, name, op); err != nil || done {
			return err
		}
	case plan.OpAttrs:
		if err := setAttrsAt(pfd, name, op.Entry, op.Old, op.Path); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	default:
		return fmt.Errorf("commit: unknown op %q", op.Kind)
	}
	c.hooks.crash("op")
	return nil
}

// link makes op.Path a hard link to op.Entry.Link, through the stage;
// done reports that it already was one (nothing to do).
func (c *committer) link(pfd int, name string, op *plan.Op) (done bool, err error) {
	sfd, sname, err := c.root.Parent(op.Entry.Link)
	if err != nil {
		return false, fmt.Errorf("commit: hardlink target %s of %s: %w", op.Entry.Link, op.Path, err)
	}
	defer unix.Close(sfd)
	// The descriptor of the target is what gets linked: checked to be
	// a regular file, it cannot be swapped between check and link.
	src, err := beneath.OpenTarget(sfd, sname, images.IFMT(images.TypeFile), images.TypeFile.String(), op.Entry.Link)
	if err != nil {
		return false, fmt.Errorf("commit: hardlink target of %s: %w", op.Path, err)
	}
	defer src.Close()
	var s1 unix.Stat_t
	if err := unix.Fstat(src.Fd(), &s1); err != nil {
		return false, fmt.Errorf("commit: hardlink target of %s: %w", op.Path, err)
	}
	if s2, err := beneath.Lstat(pfd, name); err == nil && s1.Ino == s2.Ino && s1.Dev == s2.Dev {
		return true, nil
	}
	_ = unix.Unlinkat(c.stage.Fd(), op.Stage, 0) // an earlier run's link, if any
	if err := unix.Linkat(src.Fd(), "", c.stage.Fd(), op.Stage, unix.AT_EMPTY_PATH); err != nil {
		return false, fmt.Errorf("commit: linking %s: %w", op.Path, err)
	}
	if err := c.moveAside(pfd, name, op.Backup, op.Path); err != nil {
		return false, err
	}
	if err := unix.Renameat(c.stage.Fd(), op.Stage, pfd, name); err != nil {
		return false, fmt.Errorf("commit: linking %s: %w", op.Path, err)
	}
	return false, nil
}

// remove moves op.Path aside (into the backup); a directory is removed
// only when empty. done reports that nothing was left to do.
func (c *committer) remove(pfd int, name string, op *plan.Op) (done bool, err error) {
	st, err := beneath.Lstat(pfd, name)
	if err != nil {
		return true, nil // gone already
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		// A directory that still holds local or unmanaged paths, or
		// is a mount point, stays.
		if err := unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.EEXIST) {
			return false, fmt.Errorf("commit: removing %s: %w", op.Path, err)
		}
		return true, nil
	}
	if err := c.moveAside(pfd, name, op.Backup, op.Path); err != nil {
		return false, err
	}
	return false, nil
}

// Run runs every op of j against root. When an op fails, the ops
// done so far are undone (see undo) and the error is returned: the root is
// back at the old image. Only when the undo fails too is the root left
// between images, with the journal kept for the next attempt.
func Run(ctx context.Context, root string, j *Journal, h Hooks) error {
	c, err := openCommitter(root, j, h)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	defer c.Close()
	// A commit is not interrupted by cancellation: stopping halfway
	// would only force recovery to finish it later.
	_ = ctx
	for i := range j.Ops {
		if err := c.run(&j.Ops[i]); err != nil {
			if uerr := c.undo(i); uerr != nil {
				return &Error{Err: err, Undo: uerr}
			}
			return &Error{Err: err, Undone: true}
		}
	}
	return nil
}
