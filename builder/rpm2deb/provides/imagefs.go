package provides

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"time"

	"github.com/ingotfleet/ingot/images"
)

// ContentSource gives the content of an image's regular files by sha256;
// images/store.Store is one.
type ContentSource interface {
	OpenFile(ctx context.Context, sha images.Digest) (io.ReadCloser, error)
}

// maxTargetFile bounds what the resolver reads from an image (the dpkg
// status of a large image is a few MiB).
const maxTargetFile = 256 << 20

// ManifestFS is a read-only fs.FS over an image: names and attributes from
// its manifest, content from a ContentSource. It is what --target REF
// resolves dependencies against.
type ManifestFS struct {
	ctx      context.Context
	m        *images.Manifest
	content  ContentSource
	children map[string][]string // directory → sorted child names
}

// NewManifestFS serves the image m whose file contents come from content.
func NewManifestFS(ctx context.Context, m *images.Manifest, content ContentSource) *ManifestFS {
	f := &ManifestFS{ctx: ctx, m: m, content: content, children: map[string][]string{}}
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

var _ TargetFS = (*ManifestFS)(nil)
var _ fs.ReadLinkFS = (*ManifestFS)(nil)

func (f *ManifestFS) lookup(op, name string) (*images.Entry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	e := f.m.Lookup(name)
	if e == nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return e, nil
}

// Open implements fs.FS for regular files (the resolver reads whole files
// with ReadFile; directories through ReadDir).
func (f *ManifestFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("use ReadFile or ReadDir: %w", fs.ErrInvalid)}
}

// ReadFile implements fs.ReadFileFS.
func (f *ManifestFS) ReadFile(name string) ([]byte, error) {
	e, err := f.lookup("read", name)
	if err != nil {
		return nil, err
	}
	e = f.m.Resolve(e)
	if e == nil || e.Type != images.TypeFile {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("not a regular file")}
	}
	if e.Size > maxTargetFile {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("%d bytes: too large", e.Size)}
	}
	rc, err := f.content.OpenFile(f.ctx, e.SHA256)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	defer func() { _ = rc.Close() }() // read-only
	data, err := io.ReadAll(io.LimitReader(rc, e.Size+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	if int64(len(data)) != e.Size {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("content is %d bytes, manifest says %d", len(data), e.Size)}
	}
	return data, nil
}

// ReadDir implements fs.ReadDirFS.
func (f *ManifestFS) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := f.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if e.Type != images.TypeDir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fmt.Errorf("not a directory")}
	}
	var out []fs.DirEntry
	for _, c := range f.children[name] {
		p := c
		if name != "." {
			p = name + "/" + c
		}
		out = append(out, dirEntry{name: c, e: f.m.Resolve(f.m.Lookup(p))})
	}
	return out, nil
}

// ReadLink implements fs.ReadLinkFS.
func (f *ManifestFS) ReadLink(name string) (string, error) {
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
func (f *ManifestFS) Lstat(name string) (fs.FileInfo, error) {
	e, err := f.lookup("lstat", name)
	if err != nil {
		return nil, err
	}
	return dirEntry{name: name[strings.LastIndexByte(name, '/')+1:], e: f.m.Resolve(e)}, nil
}

type dirEntry struct {
	name string
	e    *images.Entry
}

func (d dirEntry) Name() string { return d.name }
func (d dirEntry) IsDir() bool  { return d.e != nil && d.e.Type == images.TypeDir }
func (d dirEntry) Type() fs.FileMode {
	return d.Mode().Type()
}
func (d dirEntry) Info() (fs.FileInfo, error) { return d, nil }
func (d dirEntry) Size() int64 {
	if d.e == nil {
		return 0
	}
	return d.e.Size
}
func (d dirEntry) Mode() fs.FileMode {
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
func (d dirEntry) ModTime() time.Time {
	if d.e == nil {
		return time.Time{}
	}
	return time.Unix(d.e.Mtime, 0)
}
func (d dirEntry) Sys() any { return nil }
