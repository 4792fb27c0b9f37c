package images

import (
	"fmt"
	"maps"
	"path"
	"strings"

	"github.com/ingotfleet/ingot/internal/beneath"
)

// Type is the kind of a path in an image.
type Type uint8

// The types of path a Linux root filesystem holds.
const (
	TypeFile     Type = iota + 1 // regular file
	TypeDir                      // directory
	TypeSymlink                  // symbolic link; Entry.Link is its target, as stored
	TypeHardlink                 // another name of a regular file; Entry.Link is that file's path
	TypeChar                     // character device
	TypeBlock                    // block device
	TypeFifo                     // named pipe
	TypeSocket                   // unix socket
)

// typeNames are the manifest spellings, mtree's where mtree has one.
var typeNames = [...]string{
	TypeFile:     "file",
	TypeDir:      "dir",
	TypeSymlink:  "link",
	TypeHardlink: "hardlink",
	TypeChar:     "char",
	TypeBlock:    "block",
	TypeFifo:     "fifo",
	TypeSocket:   "socket",
}

func (t Type) String() string {
	if t == 0 || int(t) >= len(typeNames) {
		return fmt.Sprintf("Type(%d)", uint8(t))
	}
	return typeNames[t]
}

// ParseType is the inverse of Type.String.
func ParseType(s string) (Type, error) {
	for t, n := range typeNames {
		if t != 0 && n == s {
			return Type(t), nil
		}
	}
	return 0, fmt.Errorf("unknown type %q", s)
}

// Mode bits beyond the permission bits, as in stat(2).
const (
	ModeSetuid = 0o4000
	ModeSetgid = 0o2000
	ModeSticky = 0o1000
	ModePerm   = 0o7777 // every bit an Entry's Mode may hold
)

// XattrCapability is the extended attribute that holds file capabilities.
const XattrCapability = "security.capability"

// Entry is one path of an image.
//
// Path is relative to the image root, clean, without a leading "./" or "/";
// the root itself is ".". A hardlink entry carries only Path, Type and Link:
// every other attribute belongs to the file it links to, which comes earlier
// in the manifest.
type Entry struct {
	Path     string
	Type     Type
	Mode     uint32 // permission bits with setuid, setgid and sticky (ModePerm)
	UID      int
	GID      int
	Uname    string // user name, "" when unknown
	Gname    string // group name, "" when unknown
	Size     int64  // regular files: content length
	SHA256   Digest // regular files: sha256 of the content
	Link     string // symlink target (any bytes), or hardlink target path
	DevMajor uint32 // char and block devices
	DevMinor uint32
	Xattrs   map[string]string // name → raw value; nil when there are none
	Mtime    int64             // seconds since the Unix epoch
}

// Equal reports whether two entries are the same in every attribute.
func (e *Entry) Equal(o *Entry) bool {
	return e.Path == o.Path && e.Type == o.Type && e.Mode == o.Mode &&
		e.UID == o.UID && e.GID == o.GID && e.Uname == o.Uname && e.Gname == o.Gname &&
		e.Size == o.Size && e.SHA256 == o.SHA256 && e.Link == o.Link &&
		e.DevMajor == o.DevMajor && e.DevMinor == o.DevMinor &&
		e.Mtime == o.Mtime && maps.Equal(e.Xattrs, o.Xattrs)
}

// Clone returns a copy that shares nothing mutable with e.
func (e *Entry) Clone() Entry {
	c := *e
	c.Xattrs = maps.Clone(e.Xattrs)
	return c
}

// IsDevice reports whether e is a char or block device.
func (e *Entry) IsDevice() bool { return e.Type == TypeChar || e.Type == TypeBlock }

// ErrUnsafePath is wrapped by every error about a path that is not clean or
// would escape the root it is written under.
var ErrUnsafePath = beneath.ErrUnsafePath

// CleanPath turns a path as found in a tar, a manifest, a package or an RPM
// ("./usr/bin", "/usr/bin", "usr/bin/") into an Entry path ("usr/bin"). It
// refuses a path that would leave the root ("..", "a/../../b"), an empty
// path and one with a NUL byte.
func CleanPath(p string) (string, error) {
	if p == "" || strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("%w: %q", ErrUnsafePath, p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %q climbs out of the root", ErrUnsafePath, p)
		}
	}
	c := path.Clean("/" + p)
	if c == "/" {
		return ".", nil
	}
	return c[1:], nil
}

// ValidPath reports whether p is already an Entry path: what CleanPath
// would return for it.
func ValidPath(p string) bool {
	c, err := CleanPath(p)
	return err == nil && c == p
}

// Parent is the path of the directory holding p ("." for top-level paths
// and for the root itself).
func Parent(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// ComparePaths is the one order of paths in ingot: the root first, then
// depth first, each directory followed by everything under it, names
// sorted by bytes within a directory. It is the order of manifests (and
// so of the image digest), of exported tars, of walks and comparisons,
// and the order `tar --sort=name` and mmdebstrap write: GNU tar sets a
// directory's mtime when it meets the first entry outside it, so every
// child must come before any sibling that follows the directory.
//
// Comparing component by component is comparing the bytes with '/'
// below every other byte: "a" < "a/b" < "a-b" < "a.b".
func ComparePaths(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == ".":
		return -1
	case b == ".":
		return 1
	}
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		switch {
		case ca == '/':
			return -1
		case cb == '/':
			return 1
		case ca < cb:
			return -1
		}
		return 1
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}
