package differ

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ingotfleet/ingot/images"
)

// Source is one side of a comparison: an image's manifest and, on request,
// the content of its regular files.
type Source interface {
	// Name labels the source in reports (the argument the user gave).
	Name() string
	Manifest() *images.Manifest
	// ReadFiles calls fn once with the content of each regular file named
	// in paths (manifest paths of TypeFile entries), in any order.
	ReadFiles(ctx context.Context, paths []string, fn func(path string, content io.Reader) error) error
}

// MemSource is an image held in memory: a manifest and the content of
// (some of) its files, by path.
type MemSource struct {
	Label string
	M     *images.Manifest
	Files map[string][]byte
}

// Name implements Source.
func (s *MemSource) Name() string { return s.Label }

// Manifest implements Source.
func (s *MemSource) Manifest() *images.Manifest { return s.M }

// ReadFiles implements Source.
func (s *MemSource) ReadFiles(ctx context.Context, paths []string, fn func(string, io.Reader) error) error {
	for _, p := range paths {
		c, ok := s.Files[p]
		if !ok {
			return fmt.Errorf("%s: no content for /%s", s.Label, images.Escape(p))
		}
		if err := fn(p, bytes.NewReader(c)); err != nil {
			return err
		}
	}
	return nil
}

// DirSource is a root filesystem in a directory.
type DirSource struct {
	label string
	root  *os.Root
	m     *images.Manifest
}

// OpenDir walks the tree at dir into a manifest.
func OpenDir(ctx context.Context, dir string) (*DirSource, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening image directory: %w", err)
	}
	m, err := walkDir(ctx, dir, nil)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("reading image directory %s: %w", dir, err)
	}
	return &DirSource{label: dir, root: root, m: m}, nil
}

// Name implements Source.
func (s *DirSource) Name() string { return s.label }

// Manifest implements Source.
func (s *DirSource) Manifest() *images.Manifest { return s.m }

// ReadFiles implements Source. Files are opened through an os.Root, so a
// path never leaves the directory even if the tree changed since the walk.
func (s *DirSource) ReadFiles(ctx context.Context, paths []string, fn func(string, io.Reader) error) error {
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		f, err := s.root.Open(filepath.FromSlash(p))
		if err != nil {
			return fmt.Errorf("%s: %w", s.label, err)
		}
		err = fn(p, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: reading %s: %w", s.label, p, err)
		}
	}
	return nil
}

// Close releases the directory.
func (s *DirSource) Close() error { return s.root.Close() }

// TarSource is an image in a tar file (plain, gzip or zstd). Reading its
// manifest keeps the dpkg database in memory; other contents cost one more
// pass over the file.
type TarSource struct {
	label string
	file  string
	m     *images.Manifest
	kept  map[string][]byte
}

// maxKept bounds the content OpenTar keeps in memory (the dpkg database).
const maxKept = 256 << 20

// OpenTar reads the tar file at name into a manifest.
func OpenTar(ctx context.Context, name string) (*TarSource, error) {
	s := &TarSource{label: name, file: name, kept: map[string][]byte{}}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("opening image tar: %w", err)
	}
	defer f.Close()
	var kept int
	s.m, err = readTar(ctx, f, func(e *images.Entry, r io.Reader) error {
		if !isDpkgMeta(e.Path) {
			return nil
		}
		b, err := io.ReadAll(r)
		kept += len(b)
		if kept > maxKept {
			return fmt.Errorf("dpkg database over %d MiB", maxKept>>20)
		}
		s.kept[e.Path] = b
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading image tar %s: %w", name, err)
	}
	// A later duplicate of a path may have replaced a kept file.
	for p, b := range s.kept {
		if e := s.m.Lookup(p); e == nil || e.Type != images.TypeFile || e.Size != int64(len(b)) || e.SHA256 != images.Sum(b) {
			delete(s.kept, p)
		}
	}
	return s, nil
}

// Name implements Source.
func (s *TarSource) Name() string { return s.label }

// Manifest implements Source.
func (s *TarSource) Manifest() *images.Manifest { return s.m }

// ReadFiles implements Source.
func (s *TarSource) ReadFiles(ctx context.Context, paths []string, fn func(string, io.Reader) error) error {
	want := map[string]bool{}
	for _, p := range paths {
		if b, ok := s.kept[p]; ok {
			if err := fn(p, bytes.NewReader(b)); err != nil {
				return err
			}
			continue
		}
		want[p] = true
	}
	if len(want) == 0 {
		return nil
	}
	f, err := os.Open(s.file)
	if err != nil {
		return fmt.Errorf("opening image tar: %w", err)
	}
	defer f.Close()
	_, err = readTar(ctx, f, func(e *images.Entry, r io.Reader) error {
		if !want[e.Path] {
			return nil
		}
		delete(want, e.Path)
		// The content must be what the manifest says: the file may have
		// changed since the first pass.
		hr := newHashingReader(r)
		if err := fn(e.Path, hr); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, hr); err != nil {
			return err
		}
		var got images.Entry
		hr.finish(&got)
		if me := s.m.Lookup(e.Path); me == nil || me.SHA256 != got.SHA256 {
			return fmt.Errorf("content of %s changed since the tar was first read", e.Path)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading image tar %s: %w", s.file, err)
	}
	if len(want) > 0 {
		for p := range want {
			return fmt.Errorf("%s: no content for /%s", s.label, images.Escape(p))
		}
	}
	return nil
}

// Open opens an image given as a directory or a tar file, by what is at
// the path.
func Open(ctx context.Context, arg string) (Source, error) {
	fi, err := os.Stat(arg)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return OpenDir(ctx, arg)
	}
	if strings.HasSuffix(arg, ".deb") {
		return nil, fmt.Errorf("%s: a package, not an image (see ingot review)", arg)
	}
	return OpenTar(ctx, arg)
}
