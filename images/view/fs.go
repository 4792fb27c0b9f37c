package view

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/ingotfleet/ingot/images"
)

// MaxFSFile bounds what FS reads of one file into memory (the dpkg
// status of a large image is a few MiB).
const MaxFSFile = 256 << 20

// FS serves a View as a read-only io/fs file system: names and attributes
// from the manifest, contents through the View. Names are manifest paths
// ("var/lib/dpkg/status", "." for the root): symlinks are not followed
// within a name, and Stat follows only a symlink that is the name itself.
type FS struct {
	ctx      context.Context
	v        View
	m        *images.Manifest
	children map[string][]string // directory → sorted child names
}

var (
	_ fs.ReadFileFS = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.ReadLinkFS = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
)

// NewFS serves v; ctx bounds the reads of its contents.
func NewFS(ctx context.Context, v View) *FS {
	m := v.Manifest()
	f := &FS{ctx: ctx, v: v, m: m, children: map[string][]string{}}
	for _, e := range m.Entries {
		if e.Path == "." {
			continue
		}
		dir := images.Parent(e.Path)
		f.children[dir] = append(f.children[dir], e.Path[strings.LastIndexByte(e.Path, '/')+1:])
	}
	for _, c := range f.children {
		sort.Strings(c)
	}
	return f
}

func (f *FS) lookup(op, name string) (*images.Entry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	e := f.m.Lookup(name)
	if e == nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return e, nil
}

// follow is the entry name leads to: a symlink as the last component is
// followed (within the image, at most 40 times); a hardlink is its target.
func (f *FS) follow(op, name string) (*images.Entry, error) {
	e, err := f.lookup(op, name)
	for i := 0; err == nil && e.Type == images.TypeSymlink; i++ {
		if i == 40 {
			return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("too many levels of symbolic links")}
		}
		target := e.Link
		if !strings.HasPrefix(target, "/") {
			target = images.Parent(e.Path) + "/" + target
		}
		// As in a chroot: ".." at the root stays there.
		p := strings.TrimPrefix(path.Clean("/"+target), "/")
		if p == "" {
			p = "."
		}
		e, err = f.lookup(op, p)
	}
	if err != nil {
		return nil, err
	}
	if e = f.m.Resolve(e); e == nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return e, nil
}

// Open implements fs.FS for regular files (read whole into memory, at
// most MaxFSFile bytes) and directories.
func (f *FS) Open(name string) (fs.File, error) {
	e, err := f.follow("open", name)
	if err != nil {
		return nil, err
	}
	info := fileInfo{name: baseName(name), e: e}
	switch e.Type {
	case images.TypeDir:
		ents, err := f.ReadDir(e.Path)
		if err != nil {
			return nil, err
		}
		return &dirFile{info: info, ents: ents}, nil
	case images.TypeFile:
		data, err := f.ReadFile(e.Path)
		if err != nil {
			return nil, err
		}
		return &file{info: info, Reader: bytes.NewReader(data)}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("a %s: %w", e.Type, fs.ErrInvalid)}
}

// ReadFile implements fs.ReadFileFS.
func (f *FS) ReadFile(name string) ([]byte, error) {
	e, err := f.follow("read", name)
	if err != nil {
		return nil, err
	}
	if e.Type != images.TypeFile {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("not a regular file")}
	}
	if e.Size > MaxFSFile {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("%d bytes: too large", e.Size)}
	}
	var data []byte
	err = f.v.ReadFiles(f.ctx, []string{e.Path}, func(_ string, r io.Reader) error {
		var err error
		data, err = io.ReadAll(io.LimitReader(r, e.Size+1))
		return err
	})
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	if int64(len(data)) != e.Size {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("content is %d bytes, manifest says %d", len(data), e.Size)}
	}
	return data, nil
}

// ReadDir implements fs.ReadDirFS.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := f.follow("readdir", name)
	if err != nil {
		return nil, err
	}
	if e.Type != images.TypeDir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fmt.Errorf("not a directory")}
	}
	var out []fs.DirEntry
	for _, c := range f.children[e.Path] {
		p := c
		if e.Path != "." {
			p = e.Path + "/" + c
		}
		out = append(out, fileInfo{name: c, e: f.m.Resolve(f.m.Lookup(p))})
	}
	return out, nil
}

// ReadLink implements fs.ReadLinkFS.
func (f *FS) ReadLink(name string) (string, error) {
	e, err := f.lookup("readlink", name)
	if err != nil {
		return "", err
	}
	if e.Type != images.TypeSymlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return e.Link, nil
}

// Lstat implements fs.ReadLinkFS.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	e, err := f.lookup("lstat", name)
	if err != nil {
		return nil, err
	}
	return fileInfo{name: baseName(name), e: f.m.Resolve(e)}, nil
}

// Stat implements fs.StatFS.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	e, err := f.follow("stat", name)
	if err != nil {
		return nil, err
	}
	return fileInfo{name: baseName(name), e: e}, nil
}

func baseName(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }

// fileInfo is an entry as fs.FileInfo and fs.DirEntry.
type fileInfo struct {
	name string
	e    *images.Entry // nil for a hardlink whose target is missing
}

func (d fileInfo) Name() string               { return d.name }
func (d fileInfo) IsDir() bool                { return d.e != nil && d.e.Type == images.TypeDir }
func (d fileInfo) Type() fs.FileMode          { return d.Mode().Type() }
func (d fileInfo) Info() (fs.FileInfo, error) { return d, nil }
func (d fileInfo) Sys() any                   { return nil }

func (d fileInfo) Size() int64 {
	if d.e == nil {
		return 0
	}
	return d.e.Size
}

func (d fileInfo) Mode() fs.FileMode {
	if d.e == nil {
		return 0
	}
	m := fs.FileMode(d.e.Mode & 0o777)
	switch d.e.Type {
	case images.TypeDir:
		m |= fs.ModeDir
	case images.TypeSymlink:
		m |= fs.ModeSymlink
	case images.TypeChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case images.TypeBlock:
		m |= fs.ModeDevice
	case images.TypeFifo:
		m |= fs.ModeNamedPipe
	case images.TypeSocket:
		m |= fs.ModeSocket
	}
	return m
}

func (d fileInfo) ModTime() time.Time {
	if d.e == nil {
		return time.Time{}
	}
	return time.Unix(d.e.Mtime, 0)
}

// file is an open regular file, its content in memory.
type file struct {
	info fileInfo
	*bytes.Reader
}

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *file) Close() error               { return nil }

// dirFile is an open directory.
type dirFile struct {
	info fileInfo
	ents []fs.DirEntry
	off  int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: fs.ErrInvalid}
}

// ReadDir implements fs.ReadDirFile.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.ents[d.off:]
	if n <= 0 {
		d.off = len(d.ents)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	rest = rest[:min(n, len(rest))]
	d.off += len(rest)
	return rest, nil
}
