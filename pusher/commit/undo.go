package commit

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/beneath"
	"github.com/ingotfleet/ingot/pusher/plan"
)

// Error is a commit that stopped at an op that failed. A failure
// that will not go away (a name the filesystem refuses, an attribute it
// rejects) must not leave the host between images: the ops done so far
// are undone from the journal, newest first, and the host is back at the
// image it had (Undone). Undo is set when undoing failed too.
type Error struct {
	Err    error
	Undone bool
	Undo   error
}

func (e *Error) Error() string {
	if e.Undone {
		return e.Err.Error() + " (the commit was undone: the host is at its previous image)"
	}
	return fmt.Sprintf("%v; undoing the commit failed too: %v", e.Err, e.Undo)
}

func (e *Error) Unwrap() error { return e.Err }

// undo reverts ops last..0. Each step can run again, and does nothing
// for an op that never ran, so undo after a crash (recovery replays the
// journal, which fails at the same op and undoes again) ends the same.
func (c *committer) undo(last int) error {
	var errs []error
	for k := last; k >= 0; k-- {
		if err := c.undoOp(&c.j.Ops[k]); err != nil {
			errs = append(errs, err)
		}
	}
	// Directories whose entries the commit (and the undo) changed get
	// their old attributes (mtime) back, children first, as the commit
	// would have set the new ones.
	for k := range c.j.Ops {
		op := &c.j.Ops[k]
		if k > last && op.Kind == plan.OpAttrs && op.Old != nil && op.Old.Type == images.TypeDir {
			if err := c.undoOp(op); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (c *committer) undoOp(op *plan.Op) error {
	pfd, name, err := c.root.Parent(op.Path)
	if err != nil {
		if errors.Is(err, unix.ENOENT) && op.Kind != plan.OpRemove {
			return nil // nothing was made there
		}
		if errors.Is(err, images.ErrUnsafePath) || errors.Is(err, unix.ENOTDIR) {
			// A local user replaced a directory on the way with a
			// symlink: what the commit put there went with the
			// directory, which is that user's to keep; nothing is
			// done through the link.
			return nil
		}
		return fmt.Errorf("undo %s %s: %w", op.Kind, op.Path, err)
	}
	defer unix.Close(pfd)
	fail := func(err error) error { return fmt.Errorf("undo %s %s: %w", op.Kind, op.Path, err) }
	switch op.Kind {
	case plan.OpAttrs:
		if op.Old != nil && beneath.Exists(pfd, name) {
			// A node of another type is not the one the commit changed
			// (a user swapped it): it is left alone.
			if err := setAttrsAt(pfd, name, op.Old, nil, op.Path); err != nil && !errors.Is(err, images.ErrUnsafePath) {
				return fail(err)
			}
		}
	case plan.OpPut:
		// A staged file that is gone was put in place: it goes back to
		// the stage (where a new attempt finds it).
		if !beneath.Exists(c.stage.Fd(), op.Stage) && beneath.Exists(pfd, name) {
			if err := unix.Renameat(pfd, name, c.stage.Fd(), op.Stage); err != nil {
				return fail(err)
			}
		}
		return c.restore(op, pfd, name)
	case plan.OpLink:
		if op.Backup == "" || beneath.Exists(c.backup.Fd(), op.Backup) {
			if st, err := beneath.Lstat(pfd, name); err == nil && c.isLinkOf(op, st) {
				if err := unix.Unlinkat(pfd, name, 0); err != nil {
					return fail(err)
				}
			}
		}
		return c.restore(op, pfd, name)
	case plan.OpMkdir:
		if st, err := beneath.Lstat(pfd, name); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR); err != nil {
				return fail(err)
			}
		}
		return c.restore(op, pfd, name)
	case plan.OpRemove:
		if op.Old != nil && op.Old.Type == images.TypeDir {
			if beneath.Exists(pfd, name) {
				return nil
			}
			if err := unix.Mkdirat(pfd, name, 0o700); err != nil {
				return fail(err)
			}
			if err := setAttrsAt(pfd, name, op.Old, nil, op.Path); err != nil {
				return fail(err)
			}
			return nil
		}
		return c.restore(op, pfd, name)
	}
	return nil
}

// isLinkOf reports whether st is the inode op's hardlink target has.
func (c *committer) isLinkOf(op *plan.Op, st unix.Stat_t) bool {
	sfd, sname, err := c.root.Parent(op.Entry.Link)
	if err != nil {
		return false
	}
	defer unix.Close(sfd)
	s1, err := beneath.Lstat(sfd, sname)
	return err == nil && s1.Ino == st.Ino && s1.Dev == st.Dev
}

// restore moves what the op set aside back to its path.
func (c *committer) restore(op *plan.Op, pfd int, name string) error {
	if op.Backup == "" || !beneath.Exists(c.backup.Fd(), op.Backup) {
		return nil
	}
	if beneath.Exists(pfd, name) {
		return fmt.Errorf("undo %s %s: something is in the way of the old version", op.Kind, op.Path)
	}
	if err := unix.Renameat(c.backup.Fd(), op.Backup, pfd, name); err != nil {
		return fmt.Errorf("undo %s %s: %w", op.Kind, op.Path, err)
	}
	return nil
}
