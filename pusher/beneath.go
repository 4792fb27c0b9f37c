package pusher

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images"
)

// dirTree is a directory that the agent reaches only through its open
// descriptor. Every path below it is resolved by the kernel with openat2
// beneath the directory and without following any symlink (nor /proc's
// magic links), so a local user who swaps a directory for a symlink at any
// moment makes the operation fail instead of redirecting it: no path is
// checked first and used later.
type dirTree struct {
	fd   int
	path string // for messages only
}

const resolveBeneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// openTree opens the directory at path (which the configuration names, so
// symlinks in it are followed once, here).
func openTree(path string) (*dirTree, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return &dirTree{fd: fd, path: path}, nil
}

func (t *dirTree) Close() error {
	if t == nil || t.fd < 0 {
		return nil
	}
	err := unix.Close(t.fd)
	t.fd = -1
	return err
}

func (t *dirTree) abs(rel string) string {
	if rel == "." || rel == "" {
		return t.path
	}
	return t.path + "/" + rel
}

// open opens rel beneath the tree with flags (O_NOFOLLOW and O_CLOEXEC
// added: the last component is never followed either).
func (t *dirTree) open(rel string, flags int, mode uint32) (int, error) {
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{Flags: uint64(flags | unix.O_NOFOLLOW | unix.O_CLOEXEC), Resolve: resolveBeneath}
	if flags&(unix.O_CREAT|unix.O_TMPFILE) != 0 {
		how.Mode = uint64(mode)
	}
	for tries := 0; ; tries++ {
		fd, err := unix.Openat2(t.fd, rel, &how)
		// EAGAIN: a rename raced the lookup; the kernel asks to retry.
		if (errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR)) && tries < 100 {
			continue
		}
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
			err = fmt.Errorf("%w (a symlink or a move on the way: %w)", images.ErrUnsafePath, err)
		}
		return fd, err
	}
}

// dir opens the directory rel beneath the tree.
func (t *dirTree) dir(rel string) (int, error) {
	fd, err := t.open(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if errors.Is(err, unix.ENOTDIR) {
		err = fmt.Errorf("%s: %w", t.abs(rel), err)
		var st unix.Stat_t
		if unix.Fstatat(t.fd, rel, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			err = fmt.Errorf("%w: %s is a symlink", images.ErrUnsafePath, rel)
		}
	}
	return fd, err
}

// parent opens the directory holding rel and returns it with rel's last
// component: the pair every *at call of the commit works on. The parent
// of "." is the tree itself, with base ".".
func (t *dirTree) parent(rel string) (int, string, error) {
	if rel == "." || rel == "" {
		fd, err := unix.Dup(t.fd)
		return fd, ".", err
	}
	fd, err := t.dir(images.Parent(rel))
	if err != nil {
		return -1, "", err
	}
	return fd, rel[strings.LastIndexByte(rel, '/')+1:], nil
}

// errNotRegular is returned when a path that should be a regular file is
// something else (a FIFO, a device, a directory): it is not read.
var errNotRegular = errors.New("not a regular file")

// openRegular opens rel for reading: non-blocking (a FIFO swapped in
// cannot stall the agent), never through a symlink, and only if it is a
// regular file.
func (t *dirTree) openRegular(rel string) (*os.File, error) {
	fd, err := t.open(rel, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", t.abs(rel), err)
	}
	return regularFile(fd, t.abs(rel))
}

// openRegularAt is openRegular of one name in an open directory.
func openRegularAt(dirfd int, name, abs string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", abs, err)
	}
	return regularFile(fd, abs)
}

func regularFile(fd int, abs string) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat %s: %w", abs, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w (%s): it changed while the agent looked at it", abs, errNotRegular, typeName(st.Mode))
	}
	return os.NewFile(uintptr(fd), abs), nil
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symlink"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFREG:
		return "a regular file"
	}
	return "of unknown type"
}

// ifmt is the stat type an entry of type typ has on disk.
func ifmt(typ images.Type) uint32 {
	switch typ {
	case images.TypeDir:
		return unix.S_IFDIR
	case images.TypeSymlink:
		return unix.S_IFLNK
	case images.TypeChar:
		return unix.S_IFCHR
	case images.TypeBlock:
		return unix.S_IFBLK
	case images.TypeFifo:
		return unix.S_IFIFO
	case images.TypeSocket:
		return unix.S_IFSOCK
	}
	return unix.S_IFREG
}

// lstatAt stats name in dirfd without following it; fs.ErrNotExist when
// there is nothing there.
func lstatAt(dirfd int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return st, fs.ErrNotExist
	}
	return st, err
}

func existsAt(dirfd int, name string) bool {
	_, err := lstatAt(dirfd, name)
	return err == nil
}

// fdPath names the inode an open descriptor holds. Calls that follow a
// path land exactly on that inode (the magic link is not a path a user
// can change), which is how chmod and xattrs reach an O_PATH descriptor.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// attrTarget is a node whose attributes the agent sets: an O_PATH or
// opened descriptor of a non-symlink, or, for a symlink (whose attributes
// cannot be set through a descriptor), its name in an open directory.
type attrTarget struct {
	fd      int    // the node itself (O_PATH or opened)
	dirfd   int    // symlinks: the directory holding it
	name    string // symlinks: its name there
	symlink bool
	what    string // for messages
}

// openAttrTarget opens name in dirfd without following it and checks it
// is of type typ: a node swapped for something else is not touched.
func openAttrTarget(dirfd int, name string, typ images.Type, what string) (*attrTarget, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", what, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat %s: %w", what, err)
	}
	if st.Mode&unix.S_IFMT != ifmt(typ) {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w: it is %s, the image has a %s (changed during the sync?)", what, images.ErrUnsafePath, typeName(st.Mode), typ)
	}
	return &attrTarget{fd: fd, dirfd: dirfd, name: name, symlink: typ == images.TypeSymlink, what: what}, nil
}

func (a *attrTarget) Close() { unix.Close(a.fd) }

// xpath is the path the xattr calls use: the descriptor's magic link for
// a non-symlink, the name under the open parent for a symlink (with the
// l* calls, which do not follow it).
func (a *attrTarget) xpath() string {
	if a.symlink {
		return fdPath(a.dirfd) + "/" + a.name
	}
	return fdPath(a.fd)
}

func (a *attrTarget) listXattrs(buf []byte) (int, error) {
	if a.symlink {
		return unix.Llistxattr(a.xpath(), buf)
	}
	return unix.Listxattr(a.xpath(), buf)
}

func (a *attrTarget) getXattr(name string, buf []byte) (int, error) {
	if a.symlink {
		return unix.Lgetxattr(a.xpath(), name, buf)
	}
	return unix.Getxattr(a.xpath(), name, buf)
}

func (a *attrTarget) setXattr(name string, v []byte) error {
	if a.symlink {
		return unix.Lsetxattr(a.xpath(), name, v, 0)
	}
	return unix.Setxattr(a.xpath(), name, v, 0)
}

func (a *attrTarget) removeXattr(name string) error {
	if a.symlink {
		return unix.Lremovexattr(a.xpath(), name)
	}
	return unix.Removexattr(a.xpath(), name)
}

// setAttrs sets owner, mode, xattrs and mtime to e's, changing only what
// differs from have (nil: unknown).
func (a *attrTarget) setAttrs(e, have *images.Entry) error {
	if have == nil || have.UID != e.UID || have.GID != e.GID {
		// On the descriptor itself: a symlink's O_PATH descriptor is the
		// link, never what it points to.
		if err := unix.Fchownat(a.fd, "", e.UID, e.GID, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %s: %w", a.what, err)
		}
	}
	// chown clears setuid and setgid: chmod comes after it.
	if !a.symlink && (have == nil || have.Mode != e.Mode || have.UID != e.UID || have.GID != e.GID) {
		if err := unix.Fchmodat(unix.AT_FDCWD, fdPath(a.fd), e.Mode&images.ModePerm, 0); err != nil {
			return fmt.Errorf("chmod %s: %w", a.what, err)
		}
	}
	if have == nil || !maps.Equal(have.Xattrs, e.Xattrs) {
		cur := map[string]string{}
		if have == nil || len(have.Xattrs) > 0 {
			x, err := readXattrsOf(a)
			if err != nil {
				return err
			}
			cur = x
		}
		for k := range cur {
			if _, ok := e.Xattrs[k]; !ok {
				if err := a.removeXattr(k); err != nil && !errors.Is(err, unix.ENODATA) {
					return fmt.Errorf("removing xattr %s of %s: %w", k, a.what, err)
				}
			}
		}
		for k, v := range e.Xattrs {
			if hv, ok := cur[k]; ok && hv == v {
				continue
			}
			if err := a.setXattr(k, []byte(v)); err != nil {
				return fmt.Errorf("setting xattr %s of %s: %w", k, a.what, err)
			}
		}
	}
	ts := []unix.Timespec{{Sec: e.Mtime}, {Sec: e.Mtime}}
	var err error
	if a.symlink {
		err = unix.UtimesNanoAt(a.dirfd, a.name, ts, unix.AT_SYMLINK_NOFOLLOW)
	} else {
		err = unix.UtimesNanoAt(unix.AT_FDCWD, fdPath(a.fd), ts, 0)
	}
	if err != nil {
		return fmt.Errorf("setting mtime of %s: %w", a.what, err)
	}
	return nil
}

// setAttrsAt sets name's (in dirfd) attributes to e's; name must still be
// of e's type.
func setAttrsAt(dirfd int, name string, e, have *images.Entry, what string) error {
	typ := e.Type
	if typ == images.TypeHardlink {
		typ = images.TypeFile
	}
	a, err := openAttrTarget(dirfd, name, typ, what)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.setAttrs(e, have)
}

// readXattrsAt reads the xattrs of name in dirfd (not following it).
func readXattrsAt(dirfd int, name, what string) (map[string]string, error) {
	return readXattrsOf(&attrTarget{fd: -1, dirfd: dirfd, name: name, symlink: true, what: what})
}

// readXattrsOf lists and reads a node's extended attributes.
func readXattrsOf(a *attrTarget) (map[string]string, error) {
	buf := make([]byte, 1024)
	var n int
	var err error
	for {
		n, err = a.listXattrs(buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		break
	}
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing xattrs of %s: %w", a.what, err)
	}
	if n == 0 {
		return nil, nil
	}
	x := map[string]string{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		val := make([]byte, 256)
		for {
			m, err := a.getXattr(name, val)
			if errors.Is(err, unix.ERANGE) {
				val = make([]byte, len(val)*4)
				continue
			}
			if errors.Is(err, unix.ENODATA) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reading xattr %s of %s: %w", name, a.what, err)
			}
			x[name] = string(val[:m])
			break
		}
	}
	if len(x) == 0 {
		return nil, nil
	}
	return x, nil
}

// checkPrivateDir makes sure no user but root can change what is at path
// or above it: every directory from / down is owned by root (or the
// agent's user) and writable by nobody else, unless sticky (like /tmp).
// The agent's state directory must be such a place: its journal, stage
// and backups are reached by path.
func checkPrivateDir(path string) error {
	real, err := evalDir(path)
	if err != nil {
		return err
	}
	me := uint32(os.Geteuid())
	p := real
	for {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		if st.Uid != 0 && st.Uid != me {
			return fmt.Errorf("state directory %s: %s is owned by uid %d: only root may own it and the directories above it", path, p, st.Uid)
		}
		if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
			return fmt.Errorf("state directory %s: %s is writable by group or others (mode %04o): another user could replace what the agent keeps there", path, p, st.Mode&0o7777)
		}
		if p == "/" {
			return nil
		}
		p = dirOf(p)
	}
}

func dirOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// evalDir is path made absolute with its symlinks resolved.
func evalDir(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	return real, nil
}
