package beneath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrUnsafePath is wrapped by errors about a path that leads through a
// symlink or out of its tree. Package images re-exports it as
// images.ErrUnsafePath (hence its text).
var ErrUnsafePath = errors.New("images: unsafe path")

// ErrNotRegular is returned when a path that should be a regular file is
// something else (a FIFO, a device, a directory): it is not read.
var ErrNotRegular = errors.New("not a regular file")

// Dir is a directory reached only through its open descriptor.
type Dir struct {
	fd   int
	path string // for messages only
}

const resolveBeneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// Open opens the directory at path (which the caller names, so symlinks
// in it are followed once, here).
func Open(path string) (*Dir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return &Dir{fd: fd, path: path}, nil
}

// Close closes the descriptor; closing a nil or closed Dir does nothing.
func (t *Dir) Close() error {
	if t == nil || t.fd < 0 {
		return nil
	}
	err := unix.Close(t.fd)
	t.fd = -1
	return err
}

// Fd is the directory's descriptor, owned by t.
func (t *Dir) Fd() int { return t.fd }

// Path is the directory's path, for messages.
func (t *Dir) Path() string { return t.path }

// Abs is rel's path on the host, for messages.
func (t *Dir) Abs(rel string) string {
	if rel == "." || rel == "" {
		return t.path
	}
	return t.path + "/" + rel
}

// OpenAt opens rel beneath the tree with flags (O_NOFOLLOW and O_CLOEXEC
// added: the last component is never followed either).
func (t *Dir) OpenAt(rel string, flags int, mode uint32) (int, error) {
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
			err = fmt.Errorf("%w (a symlink or a move on the way: %w)", ErrUnsafePath, err)
		}
		return fd, err
	}
}

// OpenDir opens the directory rel beneath the tree.
func (t *Dir) OpenDir(rel string) (int, error) {
	fd, err := t.OpenAt(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if errors.Is(err, unix.ENOTDIR) {
		err = fmt.Errorf("%s: %w", t.Abs(rel), err)
		var st unix.Stat_t
		if unix.Fstatat(t.fd, rel, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			err = fmt.Errorf("%w: %s is a symlink", ErrUnsafePath, rel)
		}
	}
	return fd, err
}

// Parent opens the directory holding rel and returns it with rel's last
// component: the pair every *at call works on. The parent of "." is the
// tree itself, with base ".".
func (t *Dir) Parent(rel string) (int, string, error) {
	if rel == "." || rel == "" {
		fd, err := unix.Dup(t.fd)
		return fd, ".", err
	}
	i := strings.LastIndexByte(rel, '/')
	dir := "."
	if i >= 0 {
		dir = rel[:i]
	}
	fd, err := t.OpenDir(dir)
	if err != nil {
		return -1, "", err
	}
	return fd, rel[i+1:], nil
}

// OpenRegular opens rel for reading: non-blocking (a FIFO swapped in
// cannot stall the caller), never through a symlink, and only if it is a
// regular file.
func (t *Dir) OpenRegular(rel string) (*os.File, error) {
	fd, err := t.OpenAt(rel, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", t.Abs(rel), err)
	}
	return RegularFile(fd, t.Abs(rel))
}

// OpenRegularAt is OpenRegular of one name in an open directory.
func OpenRegularAt(dirfd int, name, abs string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", abs, err)
	}
	return RegularFile(fd, abs)
}

// RegularFile wraps fd (named abs in messages) as a file if it is a
// regular file, and closes it if not.
func RegularFile(fd int, abs string) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd) // read-only, never used
		return nil, fmt.Errorf("stat %s: %w", abs, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		_ = unix.Close(fd) // read-only, never used
		return nil, fmt.Errorf("%s: %w (%s): it changed while the agent looked at it", abs, ErrNotRegular, TypeName(st.Mode))
	}
	return os.NewFile(uintptr(fd), abs), nil
}

// TypeName names the file type of a stat mode: "a directory", "a FIFO".
func TypeName(mode uint32) string {
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

// Lstat stats name in dirfd without following it; fs.ErrNotExist when
// there is nothing there.
func Lstat(dirfd int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return st, fs.ErrNotExist
	}
	return st, err
}

// Exists reports whether anything is at name in dirfd.
func Exists(dirfd int, name string) bool {
	_, err := Lstat(dirfd, name)
	return err == nil
}

// FdPath names the inode an open descriptor holds. Calls that follow a
// path land exactly on that inode (the magic link is not a path a user
// can change), which is how chmod and xattrs reach an O_PATH descriptor.
func FdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// Readlink reads the target of symlink name in dirfd (abs names it in
// messages).
func Readlink(dirfd int, name, abs string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", fmt.Errorf("readlink %s: %w", abs, err)
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, len(buf)*4)
	}
}

// direntBufs are getdents buffers, reused across directories.
var direntBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// ReadDirNames lists directory fd (from its current offset), sorted,
// without "." and "..": getdents on the descriptor itself.
func ReadDirNames(fd int) ([]string, error) {
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
	var names []string
	for {
		n, err := unix.ReadDirent(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	slices.Sort(names)
	return names, nil
}
