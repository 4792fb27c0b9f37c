package images

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"

	"golang.org/x/sys/unix"
)

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
	// read and the mtime after reading, instead of failing the walk. For
	// checking live hosts; never for making images.
	AllowChanging bool
}

// WalkDir makes the Manifest of the tree at root, which must be a
// directory (a symlink given as root is followed; nothing under it is).
// Every path is lstat'ed, symlinks are never followed, directories are read
// in sorted order, xattrs come from llistxattr/lgetxattr. Regular files
// that share an inode (same device and inode number) become one file, at
// the first of their paths in manifest order, and hardlinks to it at the
// others; other types that share an inode are recorded separately. fn,
// which may be nil, receives each file's content once, in manifest order.
//
// Sockets are recorded (WriteTar leaves them out). A file that changes
// while it is read is an error naming it, unless AllowChanging.
func WalkDir(ctx context.Context, root string, opts WalkOptions, fn FileFunc) (*Manifest, error) {
	var st unix.Stat_t
	if err := unix.Stat(root, &st); err != nil {
		return nil, fmt.Errorf("walking %s: %w", root, &os.PathError{Op: "stat", Path: root, Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("walking %s: not a directory", root)
	}
	w := &walker{root: root, opts: opts, rootDev: st.Dev}
	e, err := w.entry(".", &st)
	if err != nil {
		return nil, err
	}
	w.items = append(w.items, walkItem{Entry: e})
	if err := w.dir(ctx, "."); err != nil {
		return nil, err
	}
	slices.SortFunc(w.items, func(a, b walkItem) int { return ComparePaths(a.Path, b.Path) })

	entries := make([]Entry, len(w.items))
	firstPath := map[inode]string{}
	var files []int // entries whose content is read
	for i := range w.items {
		it := &w.items[i]
		entries[i] = it.Entry
		if it.Type != TypeFile {
			continue
		}
		if it.nlink > 1 {
			if p, ok := firstPath[it.ino]; ok {
				entries[i] = Entry{Path: it.Path, Type: TypeHardlink, Link: p}
				continue
			}
			firstPath[it.ino] = it.Path
		}
		files = append(files, i)
	}
	var accounts accountCapture
	if err := w.contents(ctx, entries, files, &accounts, fn); err != nil {
		return nil, err
	}
	// etc/passwd or etc/group may be a hardlink to a file that sorts
	// earlier; their content is read from their own path then.
	for _, p := range []string{passwdPath, groupPath} {
		if i, ok := slices.BinarySearchFunc(entries, p, func(e Entry, p string) int { return ComparePaths(e.Path, p) }); ok && entries[i].Type == TypeHardlink {
			if err := w.readAccounts(p, &accounts); err != nil {
				return nil, err
			}
		}
	}
	users, groups := opts.Users, opts.Groups
	if users == nil && accounts.hasPasswd {
		users = parseAccounts(accounts.passwd)
	}
	if groups == nil && accounts.hasGroup {
		groups = parseAccounts(accounts.group)
	}
	if opts.NumericOwner {
		users, groups = map[int]string{}, map[int]string{}
	}
	applyNames(entries, users, groups)
	m, err := NewManifest(entries)
	if err != nil {
		return nil, fmt.Errorf("walking %s: %w", root, err)
	}
	return m, nil
}

type inode struct{ dev, ino uint64 }

type walkItem struct {
	Entry
	ino   inode
	nlink uint64
}

type walker struct {
	root    string
	opts    WalkOptions
	rootDev uint64
	items   []walkItem
}

// abs is the host path of entry path p.
func (w *walker) abs(p string) string {
	if p == "." {
		return w.root
	}
	return w.root + "/" + p
}

// dir adds what directory p holds, recursively.
func (w *walker) dir(ctx context.Context, p string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	full := w.abs(p)
	fd, err := unix.Open(full, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("walking %s: %w", full, &os.PathError{Op: "open", Path: full, Err: err})
	}
	f := os.NewFile(uintptr(fd), full)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("walking %s: %w", full, err)
	}
	slices.Sort(names)
	for _, name := range names {
		c := name
		if p != "." {
			c = p + "/" + name
		}
		if w.opts.Exclude != nil && w.opts.Exclude(c) {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(w.abs(c), &st); err != nil {
			return fmt.Errorf("walking %s: %w", w.root, &os.PathError{Op: "lstat", Path: w.abs(c), Err: err})
		}
		e, err := w.entry(c, &st)
		if err != nil {
			return err
		}
		w.items = append(w.items, walkItem{Entry: e, ino: inode{st.Dev, st.Ino}, nlink: uint64(st.Nlink)})
		if e.Type == TypeDir && !(w.opts.OneFileSystem && st.Dev != w.rootDev) {
			if err := w.dir(ctx, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// entry turns the lstat of path p into an Entry (without content hash).
func (w *walker) entry(p string, st *unix.Stat_t) (Entry, error) {
	full := w.abs(p)
	e := Entry{
		Path:  p,
		Mode:  st.Mode & ModePerm,
		UID:   int(st.Uid),
		GID:   int(st.Gid),
		Mtime: st.Mtim.Sec,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Type = TypeFile
		e.Size = st.Size
	case unix.S_IFDIR:
		e.Type = TypeDir
	case unix.S_IFLNK:
		e.Type = TypeSymlink
		l, err := os.Readlink(full)
		if err != nil {
			return e, fmt.Errorf("walking %s: %w", w.root, err)
		}
		e.Link = l
	case unix.S_IFCHR:
		e.Type = TypeChar
		e.DevMajor, e.DevMinor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFBLK:
		e.Type = TypeBlock
		e.DevMajor, e.DevMinor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFIFO:
		e.Type = TypeFifo
	case unix.S_IFSOCK:
		e.Type = TypeSocket
	default:
		return e, fmt.Errorf("walking %s: %s has unknown file type %o", w.root, full, st.Mode&unix.S_IFMT)
	}
	x, err := readXattrs(full, w.opts.Xattr)
	if err != nil {
		return e, fmt.Errorf("walking %s: %w", w.root, err)
	}
	e.Xattrs = x
	return e, nil
}

// readXattrs returns the extended attributes of path (not following a
// symlink), nil when there are none or the filesystem has none.
func readXattrs(path string, keep func(string) bool) (map[string]string, error) {
	var buf []byte
	for size := 1024; ; size *= 4 {
		buf = make([]byte, size)
		n, err := unix.Llistxattr(path, buf)
		if errors.Is(err, unix.ERANGE) && size < 1<<22 {
			continue
		}
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
		}
		buf = buf[:n]
		break
	}
	var x map[string]string
	for len(buf) > 0 {
		i := slices.Index(buf, 0)
		if i < 0 {
			i = len(buf)
		}
		name := string(buf[:i])
		buf = buf[min(i+1, len(buf)):]
		if name == "" || (keep != nil && !keep(name)) {
			continue
		}
		v, err := lgetxattr(path, name)
		if errors.Is(err, unix.ENODATA) {
			continue // removed since it was listed
		}
		if err != nil {
			return nil, &os.PathError{Op: "lgetxattr " + name, Path: path, Err: err}
		}
		if x == nil {
			x = map[string]string{}
		}
		x[name] = string(v)
	}
	return x, nil
}

func lgetxattr(path, name string) ([]byte, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) && size < 1<<22 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// contents hashes the files entries[i] for i in files. With fn, one at a
// time in manifest order; without, on several goroutines (the result is
// the same).
func (w *walker) contents(ctx context.Context, entries []Entry, files []int, accounts *accountCapture, fn FileFunc) error {
	workers := min(runtime.GOMAXPROCS(0), 4)
	if fn != nil || workers < 2 || len(files) < 2 {
		for _, i := range files {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := w.content(&entries[i], &w.items[i], accounts, fn); err != nil {
				return err
			}
		}
		return nil
	}
	// etc/passwd and etc/group are read here, so the workers never share
	// accounts.
	rest := files[:0:0]
	for _, i := range files {
		if accounts.target(entries[i].Path) == nil {
			rest = append(rest, i)
			continue
		}
		if err := w.content(&entries[i], &w.items[i], accounts, nil); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errs := make(chan error, workers)
	for range workers {
		go func() {
			var none accountCapture
			for i := range next {
				if err := w.content(&entries[i], &w.items[i], &none, nil); err != nil {
					errs <- err
					cancel()
					for range next { // let the feeder finish
					}
					return
				}
			}
			errs <- nil
		}()
	}
feed:
	for _, i := range rest {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// readAccounts reads etc/passwd or etc/group (path p) into accounts.
func (w *walker) readAccounts(p string, accounts *accountCapture) error {
	f, err := openNoFollow(w.abs(p))
	if err != nil {
		return fmt.Errorf("walking %s: %w", w.root, err)
	}
	defer f.Close()
	dst := accounts.target(p)
	*dst = (*dst)[:0]
	if _, err := io.Copy(limitedAppender{dst}, f); err != nil {
		return fmt.Errorf("walking %s: %w", w.root, err)
	}
	return nil
}

// content hashes the file of entry e, passing its bytes to fn.
func (w *walker) content(e *Entry, it *walkItem, accounts *accountCapture, fn FileFunc) error {
	full := w.abs(e.Path)
	f, err := openNoFollow(full)
	if err != nil {
		return fmt.Errorf("walking %s: %w", w.root, err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("walking %s: %w", w.root, &os.PathError{Op: "fstat", Path: full, Err: err})
	}
	if (inode{st.Dev, st.Ino}) != it.ino || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("walking %s: %s was replaced while the tree was read", w.root, full)
	}
	h := sha256.New()
	var dst io.Writer = h
	if buf := accounts.target(e.Path); buf != nil {
		*buf = (*buf)[:0]
		dst = io.MultiWriter(h, limitedAppender{buf})
	}
	cr := &countingReader{r: io.TeeReader(f, dst)}
	if fn != nil {
		if err := fn(e, cr); err != nil {
			return fmt.Errorf("walking %s: content of %s: %w", w.root, displayPath(e.Path), err)
		}
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return fmt.Errorf("walking %s: %w", w.root, err)
	}
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("walking %s: %w", w.root, &os.PathError{Op: "fstat", Path: full, Err: err})
	}
	if cr.n != it.Size || st.Size != it.Size || st.Mtim.Sec != it.Mtime {
		if !w.opts.AllowChanging {
			return fmt.Errorf("walking %s: %s changed while it was read", w.root, full)
		}
		e.Mtime = st.Mtim.Sec
	}
	e.Size = cr.n
	e.SHA256 = Digest(h.Sum(nil))
	return nil
}

// openNoFollow opens a regular file for reading without following a
// symlink at its last component and without updating its atime when
// allowed.
func openNoFollow(path string) (*os.File, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	fd, err := unix.Open(path, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Open(path, flags, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// DirOpener is an OpenFunc reading entries from the tree at root, as
// WalkDir found them: it resolves each path beneath root without following
// any symlink (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), so a tree that
// changed cannot make it read outside root.
func DirOpener(root string) OpenFunc {
	return func(ctx context.Context, e *Entry) (io.ReadCloser, error) {
		dfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: root, Err: err}
		}
		defer unix.Close(dfd)
		how := unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		}
		full := root + "/" + e.Path
		fd, err := unix.Openat2(dfd, e.Path, &how)
		if err != nil {
			return nil, &os.PathError{Op: "openat2", Path: full, Err: err}
		}
		f := os.NewFile(uintptr(fd), full)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			f.Close()
			return nil, fmt.Errorf("%s is not a regular file", full)
		}
		return f, nil
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
