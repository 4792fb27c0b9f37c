package view

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/ingotfleet/ingot/images"
)

// View is one image as read-only code sees it: its manifest and, on
// request, the content of its regular files.
type View interface {
	// Name labels the image in reports and errors (the argument the
	// user gave).
	Name() string
	Manifest() *images.Manifest
	// ReadFiles calls fn once with the content of each regular file named
	// in paths (manifest paths of TypeFile entries, or hardlinks to one),
	// in any order.
	ReadFiles(ctx context.Context, paths []string, fn func(path string, content io.Reader) error) error
}

// Mem is an image held in memory: a manifest and the content of (some
// of) its files, by path.
type Mem struct {
	Label string
	M     *images.Manifest
	Files map[string][]byte
}

// Name implements View.
func (s *Mem) Name() string { return s.Label }

// Manifest implements View.
func (s *Mem) Manifest() *images.Manifest { return s.M }

// ReadFiles implements View. A hardlink without content of its own is
// read as the file it links to.
func (s *Mem) ReadFiles(ctx context.Context, paths []string, fn func(string, io.Reader) error) error {
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

// regular is the entry holding the content of the regular file p (for a
// hardlink, the file it links to), or an error naming the image.
func regular(name string, m *images.Manifest, p string) (*images.Entry, error) {
	e := m.Lookup(p)
	if e != nil {
		e = m.Resolve(e)
	}
	if e == nil || e.Type != images.TypeFile {
		return nil, fmt.Errorf("%s: /%s is not a regular file", name, images.Escape(p))
	}
	return e, nil
}
