package unpack

import (
	"archive/tar"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/ingotfleet/ingot/images"
	"golang.org/x/sys/unix"
)

// Writer creates paths below a root through directory file descriptors
// opened with openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, so nothing it
// writes can land outside the root or go through a symlink. The unpacker
// makes one per package; NewWriter makes one for files the builder itself
// puts in a root.
type Writer struct {
	rootFD     int
	ownRoot    bool // Close closes rootFD
	pkg        int
	name       string
	parentPath string
	parentFD   int
	buf        []byte
}

// NewWriter opens root for a Writer of files that come from no package;
// what names them in errors ("overlay", "/dev"). Close releases it.
func NewWriter(root, what string) (*Writer, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening root %s: %w", root, err)
	}
	return &Writer{rootFD: fd, ownRoot: true, name: what, parentFD: -1}, nil
}

// RootFD is the root's O_PATH descriptor, for *at calls on the root's
// own entries.
func (w *Writer) RootFD() int { return w.rootFD }

// Close releases the Writer's descriptors (O_PATH ones: nothing to flush).
func (w *Writer) Close() {
	w.close()
	if w.ownRoot {
		_ = unix.Close(w.rootFD) // an O_PATH descriptor: nothing to flush
		w.ownRoot = false
	}
}

// close releases the cached parent directory.
func (w *Writer) close() {
	if w.parentFD >= 0 {
		_ = unix.Close(w.parentFD) // an O_PATH descriptor: nothing to flush
		w.parentFD = -1
	}
}

// errRefused is wrapped by errors about paths that would leave the root
// or go through a symlink.
var errRefused = errors.New("refused")

// Parent opens (or reuses) the directory holding p (a clean relative
// path), refusing symlinks anywhere on the way, and returns it with p's
// base name for *at calls. The descriptor stays the Writer's.
func (w *Writer) Parent(p string) (int, string, error) {
	dir, base := images.Parent(p), path.Base(p)
	if w.parentFD >= 0 && dir == w.parentPath {
		return w.parentFD, base, nil
	}
	w.close()
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(w.rootFD, dir, how)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
			return -1, "", fmt.Errorf("%s: /%s: %w: its directory /%s is (or goes through) a symlink", w.name, p, errRefused, dir)
		}
		return -1, "", fmt.Errorf("%s: /%s: opening its directory: %w", w.name, p, err)
	}
	w.parentFD, w.parentPath = fd, dir
	return fd, base, nil
}

func (w *Writer) Mkdir(p string) error {
	dfd, base, err := w.Parent(p)
	if err != nil {
		return err
	}
	err = unix.Mkdirat(dfd, base, 0o755)
	if err == nil {
		// 0755 whatever the umask; a package's own mode comes later.
		if err := unix.Fchmodat(dfd, base, 0o755, 0); err != nil {
			return fmt.Errorf("%s: chmod /%s: %w", w.name, p, err)
		}
		return nil
	}
	if err != unix.EEXIST {
		return fmt.Errorf("%s: mkdir /%s: %w", w.name, p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: /%s: %w", w.name, p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s: /%s: %w: a directory where another package put a non-directory", w.name, p, errRefused)
	}
	return nil
}

// write creates one non-directory entry at target (replacing what is
// there when replace is set).
func (w *Writer) write(target string, hdr *tar.Header, content io.Reader, sum hash.Hash, replace bool) error {
	dfd, base, err := w.Parent(target)
	if err != nil {
		return err
	}
	if replace {
		if err := unix.Unlinkat(dfd, base, 0); err != nil && err != unix.ENOENT {
			return fmt.Errorf("%s: replacing /%s: %w", w.name, target, err)
		}
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		return w.writeFile(dfd, base, target, hdr, content, sum)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, dfd, base); err != nil {
			return w.fail("creating symlink", target, err)
		}
		if err := unix.Fchownat(dfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return w.fail("chown", target, err)
		}
	case tar.TypeLink:
		return w.hardlink(dfd, base, target, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if err := w.mknod(dfd, base, target, hdr); err != nil {
			return err
		}
	}
	mtime := []unix.Timespec{{Sec: hdr.ModTime.Unix()}, {Sec: hdr.ModTime.Unix()}}
	if err := unix.UtimesNanoAt(dfd, base, mtime, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return w.fail("setting mtime of", target, err)
	}
	return nil
}

// fail is the error for doing what to target.
func (w *Writer) fail(what, target string, err error) error {
	return fmt.Errorf("%s: %s /%s: %w", w.name, what, target, err)
}

// writeFile creates the regular file target as base in dfd with the
// content, owner, mode, xattrs and mtime of hdr, feeding sum (if set).
func (w *Writer) writeFile(dfd int, base, target string, hdr *tar.Header, content io.Reader, sum hash.Hash) error {
	fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return w.fail("creating", target, err)
	}
	f := os.NewFile(uintptr(fd), target)
	defer func() { _ = f.Close() }() // closed and checked below; this is for the error paths
	if w.buf == nil {
		w.buf = make([]byte, 256<<10)
	}
	var dst io.Writer = f
	if sum != nil {
		dst = io.MultiWriter(f, sum)
	}
	n, err := io.CopyBuffer(dst, content, w.buf)
	if err != nil {
		return w.fail("writing", target, err)
	}
	if n != hdr.Size {
		return w.fail("writing", target, io.ErrUnexpectedEOF)
	}
	// chown before chmod: chown clears setuid and setgid bits.
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return w.fail("chown", target, err)
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode)&images.ModePerm); err != nil {
		return w.fail("chmod", target, err)
	}
	if err := setXattrs(fd, hdr); err != nil {
		return w.fail("setting xattrs of", target, err)
	}
	mtime := []unix.Timespec{{Sec: hdr.ModTime.Unix()}, {Sec: hdr.ModTime.Unix()}}
	if err := unix.UtimesNanoAt(dfd, base, mtime, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return w.fail("setting mtime of", target, err)
	}
	return f.Close()
}

// hardlink links target (base in dfd) to hdr's link target, which this
// package wrote before it.
func (w *Writer) hardlink(dfd int, base, target string, hdr *tar.Header) error {
	lt, err := images.CleanPath(hdr.Linkname)
	if err != nil || lt == "." {
		return fmt.Errorf("%s: hardlink /%s to %q: %w", w.name, target, hdr.Linkname, errRefused)
	}
	// The link target was written by this package, maybe as a
	// conffile's .dpkg-new; resolve it beneath the root without symlinks.
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	tfd, err := unix.Openat2(w.rootFD, lt, how)
	if err != nil {
		return fmt.Errorf("%s: hardlink /%s: target /%s: %w", w.name, target, lt, err)
	}
	err = unix.Linkat(tfd, "", dfd, base, unix.AT_EMPTY_PATH)
	_ = unix.Close(tfd) // an O_PATH descriptor: nothing to flush
	if err != nil {
		return w.fail("creating hardlink", target, err)
	}
	return nil
}

// mknod makes the device node or fifo target (base in dfd) with the
// owner and mode of hdr.
func (w *Writer) mknod(dfd int, base, target string, hdr *tar.Header) error {
	kind := uint32(unix.S_IFIFO)
	switch hdr.Typeflag {
	case tar.TypeChar:
		kind = unix.S_IFCHR
	case tar.TypeBlock:
		kind = unix.S_IFBLK
	}
	dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	if err := unix.Mknodat(dfd, base, kind|0o600, dev); err != nil {
		return w.fail("mknod", target, err)
	}
	if err := unix.Fchownat(dfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return w.fail("chown", target, err)
	}
	if err := unix.Fchmodat(dfd, base, uint32(hdr.Mode)&images.ModePerm, 0); err != nil {
		return w.fail("chmod", target, err)
	}
	return nil
}

// setXattrs applies the PAX SCHILY.xattr records of hdr.
func setXattrs(fd int, hdr *tar.Header) error {
	keys := make([]string, 0)
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := unix.Fsetxattr(fd, strings.TrimPrefix(k, "SCHILY.xattr."), []byte(hdr.PAXRecords[k]), 0); err != nil {
			return err
		}
	}
	return nil
}

// PutFile replaces rel with a regular file holding data, owned by the
// caller (root in a build) with the permission bits mode.
func (w *Writer) PutFile(rel string, data []byte, mode uint32) error {
	dfd, base, err := w.Parent(rel)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dfd, base, 0); err != nil && err != unix.ENOENT {
		return fmt.Errorf("replacing /%s: %w", rel, err)
	}
	fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("creating /%s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	defer func() { _ = f.Close() }() // closed and checked below; this is for the error paths
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing /%s: %w", rel, err)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return fmt.Errorf("chmod /%s: %w", rel, err)
	}
	return f.Close()
}
