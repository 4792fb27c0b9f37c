package pusher

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/beneath"
)

// Tree is a directory whose paths are reached only beneath it, through
// descriptors and without following symlinks (the agent's commit path):
// how package slots reads the booted root and writes the inactive one,
// whose contents came from an image and are not trusted.
type Tree struct{ t *beneath.Dir }

// OpenTree opens the directory at path.
func OpenTree(path string) (*Tree, error) {
	t, err := beneath.Open(path)
	if err != nil {
		return nil, err
	}
	return &Tree{t}, nil
}

// Close closes the tree's descriptor.
func (t *Tree) Close() error { return t.t.Close() }

// Path is the tree's path, for messages.
func (t *Tree) Path() string { return t.t.Path() }

// Lstat describes rel (a symlink is not followed); fs.ErrNotExist when
// nothing is there. A regular file's SHA256 is not filled in.
func (t *Tree) Lstat(rel string) (images.Entry, error) {
	pfd, name, err := t.t.Parent(rel)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return images.Entry{}, fs.ErrNotExist
		}
		return images.Entry{}, err
	}
	defer unix.Close(pfd)
	n, err := statNodeAt(pfd, name, rel, t.t.Abs(rel))
	return n.Entry, err
}

// ReadFile reads the regular file rel, at most max bytes.
func (t *Tree) ReadFile(rel string, max int64) ([]byte, error) {
	return readRegular(t.t, rel, max)
}

// Open opens the regular file rel for reading.
func (t *Tree) Open(rel string) (*os.File, error) { return t.t.OpenRegular(rel) }

// ReadDir lists the names in directory rel, sorted.
func (t *Tree) ReadDir(rel string) ([]string, error) {
	fd, err := t.t.OpenDir(rel)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), t.t.Abs(rel))
	defer f.Close()
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

// WriteFile replaces rel with a regular file holding data, with mode
// and owner: written under a temporary name in the same directory,
// synced, then renamed over rel.
func (t *Tree) WriteFile(rel string, r io.Reader, mode uint32, uid, gid int) error {
	pfd, name, err := t.t.Parent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	tmp := ".ingot-slot-" + strconv.Itoa(os.Getpid()) + "-" + name
	if len(tmp) > 250 {
		tmp = tmp[:250]
	}
	_ = unix.Unlinkat(pfd, tmp, 0) // a leftover, or the failed write's temporary file
	fd, err := unix.Openat(pfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", t.t.Abs(rel), err)
	}
	f := os.NewFile(uintptr(fd), t.t.Abs(rel))
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		err = unix.Fchmod(fd, mode&images.ModePerm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(pfd, tmp, pfd, name)
	}
	if err != nil {
		_ = unix.Unlinkat(pfd, tmp, 0) // a leftover, or the failed write's temporary file
		return fmt.Errorf("writing %s: %w", t.t.Abs(rel), err)
	}
	return nil
}

// Symlink replaces rel with a symlink to target.
func (t *Tree) Symlink(rel, target string, uid, gid int) error {
	pfd, name, err := t.t.Parent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	tmp := ".ingot-slot-" + strconv.Itoa(os.Getpid()) + "-" + name
	_ = unix.Unlinkat(pfd, tmp, 0) // a leftover, or the failed write's temporary file
	if err := unix.Symlinkat(target, pfd, tmp); err != nil {
		return fmt.Errorf("symlink %s: %w", t.t.Abs(rel), err)
	}
	if err := unix.Fchownat(pfd, tmp, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		_ = unix.Unlinkat(pfd, tmp, 0) // a leftover, or the failed write's temporary file
		return fmt.Errorf("chown %s: %w", t.t.Abs(rel), err)
	}
	if err := unix.Renameat(pfd, tmp, pfd, name); err != nil {
		_ = unix.Unlinkat(pfd, tmp, 0) // a leftover, or the failed write's temporary file
		return fmt.Errorf("symlink %s: %w", t.t.Abs(rel), err)
	}
	return nil
}

// Mkdir makes directory rel unless a directory is there, and sets its
// mode and owner.
func (t *Tree) Mkdir(rel string, mode uint32, uid, gid int) error {
	pfd, name, err := t.t.Parent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := unix.Mkdirat(pfd, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("mkdir %s: %w", t.t.Abs(rel), err)
	}
	fd, err := t.t.OpenDir(rel)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", t.t.Abs(rel), err)
	}
	return unix.Fchmod(fd, mode&images.ModePerm)
}

// Remove removes rel: a file, a symlink or an empty directory. Nothing
// there is not an error.
func (t *Tree) Remove(rel string) error {
	pfd, name, err := t.t.Parent(rel)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	defer unix.Close(pfd)
	err = unix.Unlinkat(pfd, name, 0)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
		err = unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR)
	}
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing %s: %w", t.t.Abs(rel), err)
	}
	return nil
}

// Sync flushes the tree's filesystem.
func (t *Tree) Sync() error { return unix.Syncfs(t.t.Fd()) }

// SetMtime sets rel's modification (and access) time, not following a
// symlink.
func (t *Tree) SetMtime(rel string, sec int64) error {
	pfd, name, err := t.t.Parent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	ts := []unix.Timespec{{Sec: sec}, {Sec: sec}}
	return unix.UtimesNanoAt(pfd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
}
