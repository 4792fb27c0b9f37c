package view

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ingotfleet/ingot/images"
)

// Dir is a root filesystem in a directory.
type Dir struct {
	label string
	root  *os.Root
	m     *images.Manifest
}

// OpenDir walks the tree at dir into a manifest. Close releases it.
func OpenDir(ctx context.Context, dir string) (*Dir, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening image directory: %w", err)
	}
	m, err := images.WalkDir(ctx, dir, images.WalkOptions{}, nil)
	if err != nil {
		_ = root.Close() // a directory, only read
		return nil, fmt.Errorf("reading image directory %s: %w", dir, err)
	}
	return &Dir{label: dir, root: root, m: m}, nil
}

// Name implements View.
func (s *Dir) Name() string { return s.label }

// Manifest implements View.
func (s *Dir) Manifest() *images.Manifest { return s.m }

// ReadFiles implements View. Files are opened through an os.Root, so a
// path never leaves the directory even if the tree changed since the walk.
func (s *Dir) ReadFiles(ctx context.Context, paths []string, fn func(string, io.Reader) error) error {
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
func (s *Dir) Close() error { return s.root.Close() }
