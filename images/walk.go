package images

import (
	"context"
	"fmt"
	"io"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images/internal/accounts"
	"github.com/ingotfleet/ingot/internal/beneath"
)

// FileFunc receives the content of each regular file once (never for a
// hardlink), from WalkDir or imagetar.Read. It must read content to EOF or return an error; what it leaves
// unread is read and hashed by the caller. e.Size holds the size announced
// by the source; the reader computes e.Size and e.SHA256 itself from the
// bytes that pass and sets them on e once fn returns. e.Path is where the
// content was first met, which may become a hardlink in the finished
// Manifest when a path that sorts earlier shares the inode; content is best
// keyed by e.SHA256.
type FileFunc func(e *Entry, content io.Reader) error

// OpenFunc gives the content of a regular-file entry when writing it
// (imagetar.Write); DirOpener is one.
type OpenFunc func(ctx context.Context, e *Entry) (io.ReadCloser, error)

// WalkOptions tunes WalkDir.
type WalkOptions struct {
	// Exclude leaves out the paths (Entry paths, "usr/bin") for which it
	// returns true, and everything under an excluded directory. It is
	// never asked about the root.
	Exclude func(path string) bool
	// OneFileSystem keeps the walk on the root's filesystem, like rsync -x
	// and tar --one-file-system: a directory on which something else is
	// mounted is listed, its content is not.
	OneFileSystem bool
	// Users and Groups map ids to the names to record. When nil, the names
	// come from the tree's own etc/passwd and etc/group (never the host's);
	// when the tree has no such file, entries get numeric ids only.
	Users, Groups map[int]string
	// NumericOwner records no user or group names at all.
	NumericOwner bool
	// Xattr says which extended attributes to record; nil records all that
	// llistxattr(2) lists.
	Xattr func(name string) bool
	// AllowChanging records a file whose size or mtime changes while it is
	// read (a log on a live host) as read: the size and hash of the bytes
	// read and the mtime after reading, instead of failing the walk; so
	// are a file replaced since its lstat and a path gone (left out). For
	// checking live hosts; never for making images.
	AllowChanging bool
}

// WalkDir makes the Manifest of the tree at root, which must be a
// directory (a symlink given as root is followed; nothing under it is).
// It is walked by WalkTree: every path is lstat'ed beneath the root,
// symlinks are never followed, directories are read in sorted order, xattrs
// come from llistxattr/lgetxattr. Regular files
// that share an inode (same device and inode number) become one file, at
// the first of their paths in manifest order, and hardlinks to it at the
// others; other types that share an inode are recorded separately. fn,
// which may be nil, receives each file's content once, in manifest order.
//
// Sockets are recorded (imagetar.Write leaves them out). A file that changes
// while it is read is an error naming it, unless AllowChanging.
func WalkDir(ctx context.Context, root string, opts WalkOptions, fn FileFunc) (*Manifest, error) {
	t, err := WalkTree(ctx, root, TreeOptions{
		Skip:          opts.Exclude,
		OneFileSystem: opts.OneFileSystem,
		ListMounts:    true,
		Xattr:         opts.Xattr,
		AllowChanging: opts.AllowChanging,
	})
	if err != nil {
		return nil, err
	}
	defer t.Close()
	var own accounts.Capture
	if err := t.contents(ctx, &own, fn); err != nil {
		return nil, err
	}
	entries := make([]Entry, len(t.Nodes))
	for i := range t.Nodes {
		entries[i] = t.Nodes[i].Entry
	}
	// etc/passwd or etc/group may be a hardlink to a file that sorts
	// earlier; their content is read from their own path then.
	for _, p := range []string{accounts.PasswdPath, accounts.GroupPath} {
		if i, ok := slices.BinarySearchFunc(entries, p, func(e Entry, p string) int { return ComparePaths(e.Path, p) }); ok && entries[i].Type == TypeHardlink {
			if err := t.readAccounts(p, &own); err != nil {
				return nil, err
			}
		}
	}
	users, groups := opts.names(&own)
	ApplyNames(entries, users, groups)
	m, err := NewManifest(entries)
	if err != nil {
		return nil, fmt.Errorf("walking %s: %w", root, err)
	}
	return m, nil
}

// names are the user and group names to record: the options', else the
// tree's own etc/passwd and etc/group (own), none with NumericOwner.
func (opts *WalkOptions) names(own *accounts.Capture) (users, groups map[int]string) {
	users, groups = opts.Users, opts.Groups
	ownUsers, ownGroups := own.Names()
	if users == nil {
		users = ownUsers
	}
	if groups == nil {
		groups = ownGroups
	}
	if opts.NumericOwner {
		users, groups = map[int]string{}, map[int]string{}
	}
	return users, groups
}

// contents hashes every file of the tree, capturing etc/passwd and
// etc/group. With fn, one at a time in manifest order; without, on
// several goroutines (the result is the same).
func (t *Tree) contents(ctx context.Context, own *accounts.Capture, fn FileFunc) error {
	files := t.unknownFiles()
	if fn != nil || len(files) < 2 {
		buf := make([]byte, 256<<10)
		for _, i := range files {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := t.readCapturing(&t.Nodes[i], buf, own, fn); err != nil {
				return err
			}
		}
		return nil
	}
	// etc/passwd and etc/group are read here, so the workers never share
	// the capture.
	rest := files[:0:0]
	buf := make([]byte, 32<<10)
	for _, i := range files {
		if own.Target(t.Nodes[i].Path) == nil {
			rest = append(rest, i)
			continue
		}
		if err := t.readCapturing(&t.Nodes[i], buf, own, nil); err != nil {
			return err
		}
	}
	return t.parallel(ctx, rest, func(n *Node, buf []byte) error { return t.read(n, buf, nil, nil) })
}

// readCapturing reads file n, keeping its content in own if it is
// etc/passwd or etc/group.
func (t *Tree) readCapturing(n *Node, buf []byte, own *accounts.Capture, fn FileFunc) error {
	var tee io.Writer
	if dst := own.Target(n.Path); dst != nil {
		*dst = (*dst)[:0]
		tee = accounts.Appender{Dst: dst}
	}
	return t.read(n, buf, tee, fn)
}

// readAccounts reads etc/passwd or etc/group (path p) into own.
func (t *Tree) readAccounts(p string, own *accounts.Capture) error {
	f, err := t.openContent(p)
	if err != nil {
		return fmt.Errorf("walking %s: %w", t.Root(), err)
	}
	defer f.Close()
	dst := own.Target(p)
	*dst = (*dst)[:0]
	if _, err := io.Copy(accounts.Appender{Dst: dst}, f); err != nil {
		return fmt.Errorf("walking %s: %w", t.Root(), err)
	}
	return nil
}

// DirOpener is an OpenFunc reading entries from the tree at root, as
// WalkDir found them: it resolves each path beneath root without following
// any symlink (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), so a tree that
// changed cannot make it read outside root.
func DirOpener(root string) OpenFunc {
	return func(ctx context.Context, e *Entry) (io.ReadCloser, error) {
		d, err := beneath.Open(root)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.OpenRegular(e.Path)
	}
}

// IFMT is the stat file type (unix.S_IFREG, ...) an entry of type typ has
// on disk; a hardlink is a regular file.
func IFMT(typ Type) uint32 {
	switch typ {
	case TypeDir:
		return unix.S_IFDIR
	case TypeSymlink:
		return unix.S_IFLNK
	case TypeChar:
		return unix.S_IFCHR
	case TypeBlock:
		return unix.S_IFBLK
	case TypeFifo:
		return unix.S_IFIFO
	case TypeSocket:
		return unix.S_IFSOCK
	}
	return unix.S_IFREG
}
