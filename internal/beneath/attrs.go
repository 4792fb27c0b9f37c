package beneath

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"golang.org/x/sys/unix"
)

// Attrs are the attributes of a node that SetAttrs sets.
type Attrs struct {
	UID, GID int
	Mode     uint32 // permission bits (0o7777)
	Xattrs   map[string]string
	Mtime    int64 // seconds
}

// Target is a node whose attributes are read or set: an O_PATH or opened
// descriptor of a non-symlink, or, for a symlink (whose attributes cannot
// be set through a descriptor), its name in an open directory.
type Target struct {
	fd      int    // the node itself (O_PATH or opened); -1 when only named
	dirfd   int    // symlinks: the directory holding it
	name    string // symlinks: its name there
	symlink bool
	what    string // for messages
}

// TargetOf is the node open at fd (not a symlink), named what in
// messages. Closing it closes fd.
func TargetOf(fd int, what string) *Target { return &Target{fd: fd, dirfd: -1, what: what} }

// OpenTarget opens name in dirfd without following it and checks that it
// has file type ifmt (unix.S_IFREG, ...): a node swapped for something
// else is not touched. typ names the expected type in messages.
func OpenTarget(dirfd int, name string, ifmt uint32, typ, what string) (*Target, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", what, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd) // O_PATH, never used
		return nil, fmt.Errorf("stat %s: %w", what, err)
	}
	if st.Mode&unix.S_IFMT != ifmt {
		_ = unix.Close(fd) // O_PATH, never used
		return nil, fmt.Errorf("%s: %w: it is %s, the image has a %s (changed during the sync?)", what, ErrUnsafePath, TypeName(st.Mode), typ)
	}
	return &Target{fd: fd, dirfd: dirfd, name: name, symlink: ifmt == unix.S_IFLNK, what: what}, nil
}

// Fd is the node's descriptor.
func (a *Target) Fd() int { return a.fd }

// Close closes the node's descriptor.
func (a *Target) Close() {
	if a.fd >= 0 {
		_ = unix.Close(a.fd) // O_PATH or read-only: nothing to flush
	}
}

// xpath is the path the xattr calls use: the descriptor's magic link for
// a non-symlink, the name under the open parent for a symlink (with the
// l* calls, which do not follow it).
func (a *Target) xpath() string {
	if a.symlink {
		return FdPath(a.dirfd) + "/" + a.name
	}
	return FdPath(a.fd)
}

func (a *Target) listXattrs(buf []byte) (int, error) {
	if a.symlink {
		return unix.Llistxattr(a.xpath(), buf)
	}
	return unix.Listxattr(a.xpath(), buf)
}

func (a *Target) getXattr(name string, buf []byte) (int, error) {
	if a.symlink {
		return unix.Lgetxattr(a.xpath(), name, buf)
	}
	return unix.Getxattr(a.xpath(), name, buf)
}

func (a *Target) setXattr(name string, v []byte) error {
	if a.symlink {
		return unix.Lsetxattr(a.xpath(), name, v, 0)
	}
	return unix.Setxattr(a.xpath(), name, v, 0)
}

func (a *Target) removeXattr(name string) error {
	if a.symlink {
		return unix.Lremovexattr(a.xpath(), name)
	}
	return unix.Removexattr(a.xpath(), name)
}

// SetAttrs sets owner, mode, xattrs and mtime to want's, changing only
// what differs from have (nil: unknown).
func (a *Target) SetAttrs(want, have *Attrs) error {
	if have == nil || have.UID != want.UID || have.GID != want.GID {
		// On the descriptor itself: a symlink's O_PATH descriptor is the
		// link, never what it points to.
		if err := unix.Fchownat(a.fd, "", want.UID, want.GID, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %s: %w", a.what, err)
		}
	}
	// chown clears setuid and setgid: chmod comes after it.
	if !a.symlink && (have == nil || have.Mode != want.Mode || have.UID != want.UID || have.GID != want.GID) {
		if err := unix.Fchmodat(unix.AT_FDCWD, FdPath(a.fd), want.Mode&0o7777, 0); err != nil {
			return fmt.Errorf("chmod %s: %w", a.what, err)
		}
	}
	if have == nil || !maps.Equal(have.Xattrs, want.Xattrs) {
		if err := a.setXattrs(want.Xattrs, have == nil || len(have.Xattrs) > 0); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{{Sec: want.Mtime}, {Sec: want.Mtime}}
	var err error
	if a.symlink {
		err = unix.UtimesNanoAt(a.dirfd, a.name, ts, unix.AT_SYMLINK_NOFOLLOW)
	} else {
		err = unix.UtimesNanoAt(unix.AT_FDCWD, FdPath(a.fd), ts, 0)
	}
	if err != nil {
		return fmt.Errorf("setting mtime of %s: %w", a.what, err)
	}
	return nil
}

// setXattrs makes the node's xattrs want; with read, the current ones are
// read first (else the node is known to have none).
func (a *Target) setXattrs(want map[string]string, read bool) error {
	cur := map[string]string{}
	if read {
		x, err := a.ReadXattrs(nil)
		if err != nil {
			return err
		}
		cur = x
	}
	for k := range cur {
		if _, ok := want[k]; !ok {
			if err := a.removeXattr(k); err != nil && !errors.Is(err, unix.ENODATA) {
				return fmt.Errorf("removing xattr %s of %s: %w", k, a.what, err)
			}
		}
	}
	for k, v := range want {
		if hv, ok := cur[k]; ok && hv == v {
			continue
		}
		if err := a.setXattr(k, []byte(v)); err != nil {
			return fmt.Errorf("setting xattr %s of %s: %w", k, a.what, err)
		}
	}
	return nil
}

// ReadXattrsAt reads the xattrs of name in dirfd (not following it) that
// keep accepts (nil: all); what names it in messages.
func ReadXattrsAt(dirfd int, name, what string, keep func(string) bool) (map[string]string, error) {
	t := Target{fd: -1, dirfd: dirfd, name: name, symlink: true, what: what}
	return t.ReadXattrs(keep)
}

// ReadXattrs lists and reads the node's extended attributes that keep
// accepts (nil: all). A filesystem without xattrs, or a node gone since
// it was found, has none.
func (a *Target) ReadXattrs(keep func(string) bool) (map[string]string, error) {
	buf := make([]byte, 1024)
	var n int
	var err error
	for {
		n, err = a.listXattrs(buf)
		if errors.Is(err, unix.ERANGE) && len(buf) < 1<<22 {
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
	var x map[string]string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" || (keep != nil && !keep(name)) {
			continue
		}
		v, ok, err := a.readXattr(name)
		if err != nil {
			return nil, err
		}
		if ok {
			if x == nil {
				x = map[string]string{}
			}
			x[name] = v
		}
	}
	return x, nil
}

// readXattr reads one xattr; ok is false when it is gone since it was
// listed.
func (a *Target) readXattr(name string) (string, bool, error) {
	val := make([]byte, 256)
	for {
		m, err := a.getXattr(name, val)
		if errors.Is(err, unix.ERANGE) && len(val) < 1<<22 {
			val = make([]byte, len(val)*4)
			continue
		}
		if errors.Is(err, unix.ENODATA) {
			return "", false, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("reading xattr %s of %s: %w", name, a.what, err)
		}
		return string(val[:m]), true, nil
	}
}
