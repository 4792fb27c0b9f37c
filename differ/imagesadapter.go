package differ

// This file stands in for images.ReadTar, images.WalkDir and the
// decompressors (branch images-tar), which are not on main yet. It keeps
// their documented signatures so that swapping is a matter of deleting it
// and calling images.ReadTar / images.WalkDir.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images"
)

// FileFunc receives each regular file's content once (not for hardlinks);
// it must read content to EOF or return an error. e.Size and e.SHA256 are
// set from the bytes that pass.
type FileFunc func(e *images.Entry, content io.Reader) error

// hashingReader counts and hashes what is read through it.
type hashingReader struct {
	r io.Reader
	n int64
	s interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func newHashingReader(r io.Reader) *hashingReader {
	return &hashingReader{r: r, s: sha256.New()}
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.n += int64(n)
	h.s.Write(p[:n])
	return n, err
}

func (h *hashingReader) finish(e *images.Entry) {
	e.Size = h.n
	copy(e.SHA256[:], h.s.Sum(nil))
}

// feed passes content through fn (or drains it) and sets e's size and hash.
func feed(e *images.Entry, r io.Reader, fn FileFunc) error {
	hr := newHashingReader(r)
	if fn != nil {
		if err := fn(e, hr); err != nil {
			return err
		}
	}
	if _, err := io.Copy(io.Discard, hr); err != nil {
		return err
	}
	hr.finish(e)
	return nil
}

// decompress detects gzip or zstd by magic bytes.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		return z, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		z, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return z.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// readTar reads a tar (plain, gzip or zstd) into a manifest, calling fn
// with each regular file's content. Later entries of the same path win, as
// with tar -x; missing parent directories are made 0755 root:root with the
// mtime of the entry that needed them.
func readTar(ctx context.Context, r io.Reader, fn FileFunc) (*images.Manifest, error) {
	dr, err := decompress(r)
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	defer dr.Close()
	tr := tar.NewReader(dr)
	byPath := map[string]int{}
	var entries []images.Entry
	put := func(e images.Entry) {
		if i, ok := byPath[e.Path]; ok {
			entries[i] = e
			return
		}
		byPath[e.Path] = len(entries)
		entries = append(entries, e)
	}
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("tar entry %d: %w", n, err)
		}
		p, err := images.CleanPath(h.Name)
		if err != nil {
			return nil, fmt.Errorf("tar entry %d %q: %w", n, h.Name, err)
		}
		e := images.Entry{Path: p, Mode: uint32(h.Mode) & images.ModePerm, UID: h.Uid, GID: h.Gid,
			Uname: h.Uname, Gname: h.Gname, Mtime: h.ModTime.Unix()}
		for k, v := range h.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if e.Xattrs == nil {
					e.Xattrs = map[string]string{}
				}
				e.Xattrs[name] = v
			}
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			e.Type = images.TypeFile
			if err := feed(&e, tr, fn); err != nil {
				return nil, fmt.Errorf("tar entry %d %s: %w", n, h.Name, err)
			}
		case tar.TypeDir:
			e.Type = images.TypeDir
		case tar.TypeSymlink:
			e.Type, e.Link = images.TypeSymlink, h.Linkname
		case tar.TypeLink:
			t, err := images.CleanPath(h.Linkname)
			if err != nil {
				return nil, fmt.Errorf("tar entry %d %s: hardlink target: %w", n, h.Name, err)
			}
			i, ok := byPath[t]
			if !ok || entries[i].Type != images.TypeFile {
				return nil, fmt.Errorf("tar entry %d %s: hardlink to %s, which is not an earlier regular file", n, h.Name, h.Linkname)
			}
			e = images.Entry{Path: p, Type: images.TypeHardlink, Link: t}
		case tar.TypeChar, tar.TypeBlock:
			e.Type = images.TypeChar
			if h.Typeflag == tar.TypeBlock {
				e.Type = images.TypeBlock
			}
			e.DevMajor, e.DevMinor = uint32(h.Devmajor), uint32(h.Devminor)
		case tar.TypeFifo:
			e.Type = images.TypeFifo
		default:
			return nil, fmt.Errorf("tar entry %d %s: unsupported type %q", n, h.Name, h.Typeflag)
		}
		put(e)
	}
	if _, ok := byPath["."]; !ok {
		put(images.Entry{Path: ".", Type: images.TypeDir, Mode: 0o755, Uname: "root", Gname: "root"})
	}
	for i := 0; i < len(entries); i++ {
		for d := images.Parent(entries[i].Path); entries[i].Path != "." && d != "."; d = images.Parent(d) {
			if _, ok := byPath[d]; ok {
				break
			}
			put(images.Entry{Path: d, Type: images.TypeDir, Mode: 0o755, Uname: "root", Gname: "root", Mtime: entries[i].Mtime})
		}
	}
	return images.NewManifest(leadHardlinks(entries))
}

// leadHardlinks makes the first path of each hardlink group, in manifest
// order, the file and the others hardlinks to it (a tar may name them in
// any order).
func leadHardlinks(entries []images.Entry) []images.Entry {
	idx := map[string]int{}
	for i := range entries {
		idx[entries[i].Path] = i
	}
	leader := map[string]string{} // target path → first path of the group
	for i := range entries {
		if e := &entries[i]; e.Type == images.TypeHardlink && images.ComparePaths(e.Path, e.Link) < 0 {
			if l, ok := leader[e.Link]; !ok || images.ComparePaths(e.Path, l) < 0 {
				leader[e.Link] = e.Path
			}
		}
	}
	for target, first := range leader {
		file := entries[idx[target]]
		for i := range entries {
			if e := &entries[i]; e.Type == images.TypeHardlink && e.Link == target {
				e.Link = first
			}
		}
		file.Path = first
		entries[idx[first]] = file
		entries[idx[target]] = images.Entry{Path: target, Type: images.TypeHardlink, Link: first}
	}
	return entries
}

// walkDir walks a live root into a manifest: lstat only, sorted, xattrs,
// hardlinks by (device, inode), names from the root's own etc/passwd and
// etc/group. fn gets each regular file's content.
func walkDir(ctx context.Context, root string, fn FileFunc) (*images.Manifest, error) {
	users := readIDNames(filepath.Join(root, "etc/passwd"))
	groups := readIDNames(filepath.Join(root, "etc/group"))
	type found struct {
		e        images.Entry
		dev, ino uint64
		nlink    uint64
	}
	var all []found
	err := filepath.WalkDir(root, func(name string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, name)
		p := filepath.ToSlash(rel)
		var st unix.Stat_t
		if err := unix.Lstat(name, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: name, Err: err}
		}
		e := images.Entry{Path: p, Mode: st.Mode & images.ModePerm, UID: int(st.Uid), GID: int(st.Gid),
			Uname: users[int(st.Uid)], Gname: groups[int(st.Gid)], Mtime: st.Mtim.Sec}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			e.Type = images.TypeFile
		case unix.S_IFDIR:
			e.Type = images.TypeDir
		case unix.S_IFLNK:
			e.Type = images.TypeSymlink
			if e.Link, err = os.Readlink(name); err != nil {
				return err
			}
		case unix.S_IFCHR:
			e.Type, e.DevMajor, e.DevMinor = images.TypeChar, unix.Major(st.Rdev), unix.Minor(st.Rdev)
		case unix.S_IFBLK:
			e.Type, e.DevMajor, e.DevMinor = images.TypeBlock, unix.Major(st.Rdev), unix.Minor(st.Rdev)
		case unix.S_IFIFO:
			e.Type = images.TypeFifo
		case unix.S_IFSOCK:
			e.Type = images.TypeSocket
		}
		if e.Xattrs, err = lxattrs(name); err != nil {
			return err
		}
		all = append(all, found{e: e, dev: st.Dev, ino: st.Ino, nlink: uint64(st.Nlink)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b found) int { return images.ComparePaths(a.e.Path, b.e.Path) })
	type inode struct{ dev, ino uint64 }
	first := map[inode]string{}
	entries := make([]images.Entry, len(all))
	for i := range all {
		f := &all[i]
		e := f.e
		if e.Type == images.TypeFile {
			if f.nlink > 1 {
				if t, ok := first[inode{f.dev, f.ino}]; ok {
					entries[i] = images.Entry{Path: e.Path, Type: images.TypeHardlink, Link: t}
					continue
				}
				first[inode{f.dev, f.ino}] = e.Path
			}
			fh, err := os.Open(filepath.Join(root, filepath.FromSlash(e.Path)))
			if err != nil {
				return nil, err
			}
			err = feed(&e, fh, fn)
			fh.Close()
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", filepath.Join(root, e.Path), err)
			}
		}
		entries[i] = e
	}
	return images.NewManifest(entries)
}

// lxattrs reads a path's extended attributes without following symlinks.
func lxattrs(name string) (map[string]string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(name, buf)
	if errors.Is(err, unix.ERANGE) {
		if n, err = unix.Llistxattr(name, nil); err == nil {
			buf = make([]byte, n)
			n, err = unix.Llistxattr(name, buf)
		}
	}
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, &fs.PathError{Op: "llistxattr", Path: name, Err: err}
	}
	var xs map[string]string
	for _, k := range strings.Split(string(buf[:n]), "\x00") {
		if k == "" {
			continue
		}
		sz, err := unix.Lgetxattr(name, k, nil)
		if err != nil {
			return nil, &fs.PathError{Op: "lgetxattr " + k, Path: name, Err: err}
		}
		v := make([]byte, sz)
		if sz, err = unix.Lgetxattr(name, k, v); err != nil {
			return nil, &fs.PathError{Op: "lgetxattr " + k, Path: name, Err: err}
		}
		if xs == nil {
			xs = map[string]string{}
		}
		xs[k] = string(v[:sz])
	}
	return xs, nil
}

// readIDNames reads an /etc/passwd or /etc/group file into id → name.
func readIDNames(file string) map[int]string {
	names := map[int]string{}
	data, err := os.ReadFile(file)
	if err != nil {
		return names
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ":")
		if len(f) < 3 {
			continue
		}
		if id, err := strconv.Atoi(f[2]); err == nil {
			if _, dup := names[id]; !dup {
				names[id] = f[0]
			}
		}
	}
	return names
}
