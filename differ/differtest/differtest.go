package differtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images"
)

// Image is an image in memory: its manifest and the content of every file.
type Image struct {
	M     *images.Manifest
	Files map[string][]byte
}

// Mtime is the mtime of every fixture path (SOURCE_DATE_EPOCH-like).
const Mtime = 1700000000

type builder struct {
	entries []images.Entry
	files   map[string][]byte
}

func newBuilder() *builder { return &builder{files: map[string][]byte{}} }

func (b *builder) add(e images.Entry) *images.Entry {
	if e.Type != images.TypeHardlink {
		if e.Uname == "" && e.UID == 0 {
			e.Uname = "root"
		}
		if e.Gname == "" && e.GID == 0 {
			e.Gname = "root"
		}
		if e.Mtime == 0 {
			e.Mtime = Mtime
		}
	}
	b.entries = append(b.entries, e)
	return &b.entries[len(b.entries)-1]
}

func (b *builder) dir(p string, mode uint32) {
	b.add(images.Entry{Path: p, Type: images.TypeDir, Mode: mode})
}

func (b *builder) file(p string, mode uint32, content []byte) *images.Entry {
	b.files[p] = content
	return b.add(images.Entry{Path: p, Type: images.TypeFile, Mode: mode, Size: int64(len(content)), SHA256: images.Sum(content)})
}

func (b *builder) symlink(p, target string) {
	b.add(images.Entry{Path: p, Type: images.TypeSymlink, Mode: 0o777, Link: target})
}

func (b *builder) image() Image {
	// The entries are edited in place after add; copy them out sorted.
	m, err := images.NewManifest(append([]images.Entry(nil), b.entries...))
	if err != nil {
		panic(fmt.Sprintf("differtest: invalid fixture: %v", err))
	}
	return Image{M: m, Files: b.files}
}

// Gzip compresses b deterministically (no name, no mtime).
func Gzip(b []byte) []byte {
	return gzipped(gzip.BestCompression, "", b)
}

// gzipped compresses b at level with name in the header. Writing to
// memory cannot fail: an error is a bug, and panics like a bad fixture.
func gzipped(level int, name string, b []byte) []byte {
	var buf bytes.Buffer
	z, err := gzip.NewWriterLevel(&buf, level)
	if err != nil {
		panic(fmt.Sprintf("differtest: gzip: %v", err))
	}
	z.Name = name
	if _, err := z.Write(b); err != nil {
		panic(fmt.Sprintf("differtest: gzip: %v", err))
	}
	if err := z.Close(); err != nil {
		panic(fmt.Sprintf("differtest: gzip: %v", err))
	}
	return buf.Bytes()
}

// Capability builds a security.capability xattr value of revision 2 (or
// 3 with a rootid when rootid >= 0) granting caps in the permitted set,
// effective when effective is set.
func Capability(caps []int, effective bool, rootid int) string {
	var perm uint64
	for _, c := range caps {
		perm |= 1 << c
	}
	magic, n := uint32(0x02000000), 20
	if rootid >= 0 {
		magic, n = 0x03000000, 24
	}
	if effective {
		magic |= 1
	}
	v := make([]byte, n)
	binary.LittleEndian.PutUint32(v[0:], magic)
	binary.LittleEndian.PutUint32(v[4:], uint32(perm))
	binary.LittleEndian.PutUint32(v[12:], uint32(perm>>32))
	if rootid >= 0 {
		binary.LittleEndian.PutUint32(v[20:], uint32(rootid))
	}
	return string(v)
}

// Linux capability numbers used by the fixture.
const (
	CapNetAdmin = 12
	CapNetRaw   = 13
)

const changelogEntry1 = `libfoo (1.0-1) bookworm; urgency=medium

  * Initial release.

 -- Jane Maintainer <jane@example.org>  Thu, 01 Jan 2026 10:00:00 +0000
`

const changelogEntries2 = `libfoo (1.1-1) bookworm-security; urgency=high

  * New upstream release.
  * Fix CVE-2026-0001: buffer overflow in foo_parse().

 -- Jane Maintainer <jane@example.org>  Tue, 03 Feb 2026 10:00:00 +0000

libfoo (1.0-2) bookworm; urgency=medium

  * Fix build with GCC 13.

 -- Jane Maintainer <jane@example.org>  Mon, 05 Jan 2026 10:00:00 +0000

`

const newpkgChangelog = `newpkg (2.0-1) bookworm; urgency=low

  * Initial release.

 -- John Packager <john@example.org>  Sun, 01 Feb 2026 09:00:00 +0000
`

func status(pkgs ...[3]string) []byte {
	var b strings.Builder
	for i, p := range pkgs {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Package: %s\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\nVersion: %s\nDescription: %s\n", p[0], p[1], p[2])
		if p[0] == "libfoo1" {
			b.WriteString("Source: libfoo\nConffiles:\n /etc/foo.conf 0123456789abcdef0123456789abcdef\n")
		}
	}
	return []byte(b.String())
}

// Pair returns the fixture pair. From A to B:
//   - etc/motd: text edited
//   - etc/foo.conf: mode 0644 → 0600
//   - etc/app.conf: owner root:root → app:app (uid/gid and names)
//   - etc/passwd, etc/group: user and group app added
//   - usr/bin/ping: setuid added
//   - dev/sda: block device 8,0 → 8,16
//   - usr/bin/c: re-pointed from a hardlink of usr/bin/a to one of usr/bin/b
//   - usr/lib/libfoo.so: symlink retargeted libfoo.so.1 → libfoo.so.2
//   - usr/bin/netcap: security.capability added (cap_net_admin,cap_net_raw=ep)
//   - srv/data.txt: user.comment xattr added
//   - usr/share/man/man1/foo.1.gz: edit inside the gzip content
//   - usr/share/doc/libfoo1/README.gz: gzip wrapper changed, content the same
//   - usr/lib/libfoo.so.1 removed, usr/lib/libfoo.so.2 added (binary)
//   - etc/old.conf removed, etc/new.conf added
//   - usr/share/doc/libfoo1/copyright: mtime only
//   - packages: libfoo1 1.0-1 → 1.1-1 (two new changelog entries),
//     oldpkg 0.9-1 removed, newpkg 2.0-1 added, base-files unchanged;
//     libfoo1's file list names /bin/foo, which is usr/bin/foo through the
//     merged-/usr symlink bin → usr/bin.
func Pair() (a, b Image) {
	return build(false), build(true)
}

// build makes image A, or B when isB. It stays one long listing of the
// tree in path order, each difference of B beside its entry, so that it
// reads like the tree it makes; split up, the differences Pair lists
// would be scattered across functions.
func build(isB bool) Image {
	pick := func(a, b string) string {
		if isB {
			return b
		}
		return a
	}
	x := newBuilder()
	x.dir(".", 0o755)
	x.symlink("bin", "usr/bin")
	x.dir("dev", 0o755)
	x.add(images.Entry{Path: "dev/null", Type: images.TypeChar, Mode: 0o666, DevMajor: 1, DevMinor: 3})
	sda := x.add(images.Entry{Path: "dev/sda", Type: images.TypeBlock, Mode: 0o660, GID: 6, Gname: "disk", DevMajor: 8})
	if isB {
		sda.DevMinor = 16
	}
	x.dir("etc", 0o755)
	app := x.file("etc/app.conf", 0o644, []byte("listen = 8080\n"))
	if isB {
		app.UID, app.GID, app.Uname, app.Gname = 1000, 1000, "app", "app"
	}
	foo := x.file("etc/foo.conf", 0o644, []byte("# foo configuration\nverbose = no\n"))
	if isB {
		foo.Mode = 0o600
	}
	motd := "Welcome to the fleet.\n\nThis host is managed by ingot.\nLocal changes will be lost.\n"
	if isB {
		motd = "Welcome to the fleet.\n\nThis host is managed by ingot, image 2026-02.\nLocal changes will be lost.\n"
	}
	x.file("etc/motd", 0o644, []byte(motd))
	// Names of owners come from the image's own passwd and group files.
	x.file("etc/group", 0o644, []byte(pick("root:x:0:\ndisk:x:6:\n", "root:x:0:\ndisk:x:6:\napp:x:1000:\n")))
	x.file("etc/passwd", 0o644, []byte(pick("root:x:0:0:root:/root:/bin/sh\n",
		"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/nonexistent:/usr/sbin/nologin\n")))
	if isB {
		x.file("etc/new.conf", 0o644, []byte("new = yes\n"))
	} else {
		x.file("etc/old.conf", 0o644, []byte("old = yes\n"))
	}
	x.dir("srv", 0o755)
	data := x.file("srv/data.txt", 0o644, []byte("payload\n"))
	if isB {
		data.Xattrs = map[string]string{"user.comment": "reviewed"}
	}
	x.dir("usr", 0o755)
	x.dir("usr/bin", 0o755)
	x.file("usr/bin/a", 0o755, []byte("#!/bin/sh\necho a\n"))
	x.file("usr/bin/b", 0o755, []byte("#!/bin/sh\necho b\n"))
	x.add(images.Entry{Path: "usr/bin/c", Type: images.TypeHardlink, Link: pick("usr/bin/a", "usr/bin/b")})
	x.file("usr/bin/foo", 0o755, []byte(pick("\x7fELF\x00foo 1.0\x00", "\x7fELF\x00foo 1.1\x00")))
	netcap := x.file("usr/bin/netcap", 0o755, []byte("\x7fELF\x00netcap\x00"))
	if isB {
		netcap.Xattrs = map[string]string{images.XattrCapability: Capability([]int{CapNetAdmin, CapNetRaw}, true, -1)}
	}
	if isB {
		x.file("usr/bin/new-tool", 0o755, []byte("#!/bin/sh\necho new\n"))
	} else {
		x.file("usr/bin/old-tool", 0o755, []byte("#!/bin/sh\necho old\n"))
	}
	ping := x.file("usr/bin/ping", 0o755, []byte("\x7fELF\x00ping\x00"))
	if isB {
		ping.Mode = 0o4755
	}
	x.dir("usr/lib", 0o755)
	x.symlink("usr/lib/libfoo.so", pick("libfoo.so.1", "libfoo.so.2"))
	if isB {
		x.file("usr/lib/libfoo.so.2", 0o644, []byte("\x7fELF\x00libfoo 1.1\x00"))
	} else {
		x.file("usr/lib/libfoo.so.1", 0o644, []byte("\x7fELF\x00libfoo 1.0\x00"))
	}
	x.dir("usr/share", 0o755)
	x.dir("usr/share/doc", 0o755)
	x.dir("usr/share/doc/libfoo1", 0o755)
	readme := []byte("libfoo: a library for foo.\n")
	if isB {
		x.file("usr/share/doc/libfoo1/README.gz", 0o644, Gzip(readme))
	} else {
		x.file("usr/share/doc/libfoo1/README.gz", 0o644, gzipped(gzip.DefaultCompression, "README", readme))
	}
	cl := changelogEntry1
	if isB {
		cl = changelogEntries2 + changelogEntry1
	}
	x.file("usr/share/doc/libfoo1/changelog.Debian.gz", 0o644, Gzip([]byte(cl)))
	cp := x.file("usr/share/doc/libfoo1/copyright", 0o644, []byte("Copyright 2026 Jane Maintainer\n"))
	if isB {
		cp.Mtime = Mtime + 3600
	}
	if isB {
		x.dir("usr/share/doc/newpkg", 0o755)
		x.file("usr/share/doc/newpkg/changelog.Debian.gz", 0o644, Gzip([]byte(newpkgChangelog)))
	}
	x.dir("usr/share/man", 0o755)
	x.dir("usr/share/man/man1", 0o755)
	man := ".TH FOO 1\n.SH NAME\nfoo \\- do foo\n.SH SYNOPSIS\n.B foo\n[\\-v]\n"
	if isB {
		man = ".TH FOO 1\n.SH NAME\nfoo \\- do foo safely\n.SH SYNOPSIS\n.B foo\n[\\-v] [\\-n]\n"
	}
	x.file("usr/share/man/man1/foo.1.gz", 0o644, Gzip([]byte(man)))
	x.dir("var", 0o755)
	x.dir("var/lib", 0o755)
	x.dir("var/lib/dpkg", 0o755)
	x.dir("var/lib/dpkg/info", 0o755)
	x.file("var/lib/dpkg/info/base-files.list", 0o644, []byte("/.\n/etc\n/etc/motd\n"))
	libfooList := "/.\n/bin\n/bin/foo\n/etc\n/etc/foo.conf\n/usr\n/usr/lib\n/usr/lib/libfoo.so\n/usr/lib/" +
		pick("libfoo.so.1", "libfoo.so.2") + "\n/usr/share\n/usr/share/doc\n/usr/share/doc/libfoo1\n" +
		"/usr/share/doc/libfoo1/README.gz\n/usr/share/doc/libfoo1/changelog.Debian.gz\n/usr/share/doc/libfoo1/copyright\n" +
		"/usr/share/man\n/usr/share/man/man1\n/usr/share/man/man1/foo.1.gz\n"
	x.file("var/lib/dpkg/info/libfoo1:amd64.list", 0o644, []byte(libfooList))
	if isB {
		x.file("var/lib/dpkg/info/newpkg.list", 0o644, []byte("/.\n/usr\n/usr/bin\n/usr/bin/new-tool\n/usr/share/doc/newpkg\n/usr/share/doc/newpkg/changelog.Debian.gz\n"))
		x.file("var/lib/dpkg/status", 0o644, status(
			[3]string{"base-files", "12.4+deb12u5", "Debian base system miscellaneous files"},
			[3]string{"libfoo1", "1.1-1", "foo library"},
			[3]string{"newpkg", "2.0-1", "a new tool"}))
	} else {
		x.file("var/lib/dpkg/info/oldpkg.list", 0o644, []byte("/.\n/usr\n/usr/bin\n/usr/bin/old-tool\n"))
		x.file("var/lib/dpkg/status", 0o644, status(
			[3]string{"base-files", "12.4+deb12u5", "Debian base system miscellaneous files"},
			[3]string{"libfoo1", "1.0-1", "foo library"},
			[3]string{"oldpkg", "0.9-1", "an old tool"}))
	}
	return x.image()
}

// WriteTar writes img as a PAX tar, hardlinks as tar links, xattrs as
// SCHILY.xattr records.
func WriteTar(w io.Writer, img Image) error {
	tw := tar.NewWriter(w)
	for i := range img.M.Entries {
		e := &img.M.Entries[i]
		if e.Path == "." {
			continue
		}
		h := &tar.Header{Name: e.Path, Mode: int64(e.Mode), Uid: e.UID, Gid: e.GID, Uname: e.Uname, Gname: e.Gname,
			ModTime: time.Unix(e.Mtime, 0), Format: tar.FormatPAX}
		for k, v := range e.Xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		switch e.Type {
		case images.TypeFile:
			h.Typeflag, h.Size = tar.TypeReg, e.Size
		case images.TypeDir:
			h.Typeflag, h.Name = tar.TypeDir, e.Path+"/"
		case images.TypeSymlink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
		case images.TypeHardlink:
			h = &tar.Header{Name: e.Path, Typeflag: tar.TypeLink, Linkname: e.Link, ModTime: time.Unix(Mtime, 0), Format: tar.FormatPAX}
		case images.TypeChar, images.TypeBlock:
			h.Typeflag = tar.TypeChar
			if e.Type == images.TypeBlock {
				h.Typeflag = tar.TypeBlock
			}
			h.Devmajor, h.Devminor = int64(e.DevMajor), int64(e.DevMinor)
		case images.TypeFifo:
			h.Typeflag = tar.TypeFifo
		default:
			return fmt.Errorf("differtest: cannot write a %s to a tar", e.Type)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if e.Type == images.TypeFile {
			if _, err := tw.Write(img.Files[e.Path]); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

// WriteTarFile writes img to a tar file at name.
func WriteTarFile(name string, img Image) error {
	var buf bytes.Buffer
	if err := WriteTar(&buf, img); err != nil {
		return err
	}
	return os.WriteFile(name, buf.Bytes(), 0o644)
}

// WriteDir materialises img under root (which must not exist): owners,
// modes, devices, xattrs and mtimes. It needs root.
func WriteDir(root string, img Image) error {
	for i := range img.M.Entries {
		e := &img.M.Entries[i]
		name := filepath.Join(root, filepath.FromSlash(e.Path))
		var err error
		switch e.Type {
		case images.TypeDir:
			err = os.Mkdir(name, 0o700)
		case images.TypeFile:
			err = os.WriteFile(name, img.Files[e.Path], 0o600)
		case images.TypeSymlink:
			err = os.Symlink(e.Link, name)
		case images.TypeHardlink:
			err = os.Link(filepath.Join(root, filepath.FromSlash(e.Link)), name)
			if err == nil {
				continue
			}
		case images.TypeChar:
			err = unix.Mknod(name, unix.S_IFCHR|0o600, int(unix.Mkdev(e.DevMajor, e.DevMinor)))
		case images.TypeBlock:
			err = unix.Mknod(name, unix.S_IFBLK|0o600, int(unix.Mkdev(e.DevMajor, e.DevMinor)))
		case images.TypeFifo:
			err = unix.Mkfifo(name, 0o600)
		default:
			err = fmt.Errorf("cannot make a %s", e.Type)
		}
		if err != nil {
			return fmt.Errorf("differtest: %s: %w", name, err)
		}
		if err := os.Lchown(name, e.UID, e.GID); err != nil {
			return err
		}
		if e.Type != images.TypeSymlink {
			if err := os.Chmod(name, os.FileMode(e.Mode&0o777)|modeBits(e.Mode)); err != nil {
				return err
			}
		}
		for k, v := range e.Xattrs {
			if err := unix.Lsetxattr(name, k, []byte(v), 0); err != nil {
				return fmt.Errorf("differtest: setxattr %s on %s: %w", k, name, err)
			}
		}
	}
	// Mtimes last, deepest first, so that creating children does not move them.
	for i := len(img.M.Entries) - 1; i >= 0; i-- {
		e := &img.M.Entries[i]
		if e.Type == images.TypeHardlink {
			continue
		}
		name := filepath.Join(root, filepath.FromSlash(e.Path))
		ts := []unix.Timespec{{Sec: e.Mtime}, {Sec: e.Mtime}}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("differtest: utimes %s: %w", name, err)
		}
	}
	return nil
}

func modeBits(m uint32) os.FileMode {
	var f os.FileMode
	if m&images.ModeSetuid != 0 {
		f |= os.ModeSetuid
	}
	if m&images.ModeSetgid != 0 {
		f |= os.ModeSetgid
	}
	if m&images.ModeSticky != 0 {
		f |= os.ModeSticky
	}
	return f
}
