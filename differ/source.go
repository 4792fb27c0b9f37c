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
	"github.com/ingotfleet/ingot/images/imagetar"
	"github.com/ingotfleet/ingot/images/store"
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
		if e := s.M.Lookup(p); !ok && e != nil && e.Type == images.TypeHardlink {
			c, ok = s.Files[e.Link]
		}
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
	m, err := images.WalkDir(ctx, dir, images.WalkOptions{}, nil)
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
	kept  map[images.Digest][]byte // content by sha256
}

// maxKept bounds the content OpenTar keeps in memory (the dpkg database).
const maxKept = 256 << 20

// OpenTar reads the tar file at name into a manifest.
func OpenTar(ctx context.Context, name string) (*TarSource, error) {
	s := &TarSource{label: name, file: name, kept: map[images.Digest][]byte{}}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("opening image tar: %w", err)
	}
	defer f.Close()
	var kept int
	s.m, err = imagetar.Read(ctx, f, imagetar.Options{Name: name}, func(e *images.Entry, r io.Reader) error {
		if !isDpkgMeta(e.Path) {
			return nil
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if kept += len(b); kept > maxKept {
			return fmt.Errorf("dpkg database over %d MiB", maxKept>>20)
		}
		s.kept[images.Sum(b)] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Name implements Source.
func (s *TarSource) Name() string { return s.label }

// forget drops the kept contents of every path not in keep (Diff calls it
// once the dpkg database is read, to hold less memory while it diffs).
func (s *TarSource) forget(keep map[string]bool) {
	held := map[images.Digest]bool{}
	for p := range keep {
		if e := s.m.Lookup(p); e != nil {
			if e = s.m.Resolve(e); e != nil {
				held[e.SHA256] = true
			}
		}
	}
	for sum := range s.kept {
		if !held[sum] {
			delete(s.kept, sum)
		}
	}
}

// forgetter is a Source that can drop contents it holds in memory.
type forgetter interface{ forget(keep map[string]bool) }

// Manifest implements Source.
func (s *TarSource) Manifest() *images.Manifest { return s.m }

// ReadFiles implements Source. Contents are matched by sha256, so what is
// passed on is always what the manifest says.
func (s *TarSource) ReadFiles(ctx context.Context, paths []string, fn func(string, io.Reader) error) error {
	want := map[images.Digest][]string{}
	sizes := map[int64]bool{}
	for _, p := range paths {
		e := s.m.Lookup(p)
		if e != nil {
			e = s.m.Resolve(e)
		}
		if e == nil || e.Type != images.TypeFile {
			return fmt.Errorf("%s: /%s is not a regular file", s.label, images.Escape(p))
		}
		if b, ok := s.kept[e.SHA256]; ok {
			if err := fn(p, bytes.NewReader(b)); err != nil {
				return err
			}
			continue
		}
		want[e.SHA256] = append(want[e.SHA256], p)
		sizes[e.Size] = true
	}
	if len(want) == 0 {
		return nil
	}
	f, err := os.Open(s.file)
	if err != nil {
		return fmt.Errorf("opening image tar: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer // reused: most files of a wanted size are not wanted
	_, err = imagetar.Read(ctx, f, imagetar.Options{Name: s.file}, func(e *images.Entry, r io.Reader) error {
		if !sizes[e.Size] {
			return nil
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return err
		}
		sum := images.Sum(buf.Bytes())
		for _, p := range want[sum] {
			if err := fn(p, bytes.NewReader(buf.Bytes())); err != nil {
				return err
			}
		}
		delete(want, sum)
		return nil
	})
	if err != nil {
		return err
	}
	for _, ps := range want {
		return fmt.Errorf("%s: the content of /%s changed since the tar was first read", s.label, images.Escape(ps[0]))
	}
	return nil
}

// StoreSource is an image in the content-addressed store.
type StoreSource struct {
	label string
	st    *store.Store
	m     *images.Manifest
}

// OpenStore resolves ref (digest, unique digest prefix or name:tag) in st.
func OpenStore(ctx context.Context, st *store.Store, ref string) (*StoreSource, error) {
	d, err := st.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	m, err := st.Manifest(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return &StoreSource{label: ref, st: st, m: m}, nil
}

// Name implements Source.
func (s *StoreSource) Name() string { return s.label }

// Manifest implements Source.
func (s *StoreSource) Manifest() *images.Manifest { return s.m }

// Open returns the content of a regular-file entry (an images.OpenFunc).
func (s *StoreSource) Open(ctx context.Context, e *images.Entry) (io.ReadCloser, error) {
	return s.st.OpenFile(ctx, e.SHA256)
}

// ReadFiles implements Source; the store verifies every chunk it returns.
func (s *StoreSource) ReadFiles(ctx context.Context, paths []string, fn func(string, io.Reader) error) error {
	for _, p := range paths {
		e := s.m.Lookup(p)
		if e != nil {
			e = s.m.Resolve(e)
		}
		if e == nil || e.Type != images.TypeFile {
			return fmt.Errorf("%s: /%s is not a regular file", s.label, images.Escape(p))
		}
		rc, err := s.st.OpenFile(ctx, e.SHA256)
		if err != nil {
			return fmt.Errorf("%s: /%s: %w", s.label, images.Escape(p), err)
		}
		err = fn(p, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: /%s: %w", s.label, images.Escape(p), err)
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
