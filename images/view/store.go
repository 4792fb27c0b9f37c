package view

import (
	"context"
	"fmt"
	"io"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
)

// Content gives the content of regular files by sha256, checked against
// it; images/store.Store is one.
type Content interface {
	OpenFile(ctx context.Context, sha images.Digest) (io.ReadCloser, error)
}

// Store is an image whose contents come from a Content, such as the
// content-addressed store.
type Store struct {
	label string
	c     Content
	m     *images.Manifest
}

// NewStore is the image m named name, its contents read from c.
func NewStore(name string, m *images.Manifest, c Content) *Store {
	return &Store{label: name, c: c, m: m}
}

// OpenStore resolves ref (digest, unique digest prefix or name:tag) in st.
func OpenStore(ctx context.Context, st *store.Store, ref string) (*Store, error) {
	d, err := st.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	m, err := st.Manifest(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	return NewStore(ref, m, st), nil
}

// Name implements View.
func (s *Store) Name() string { return s.label }

// Manifest implements View.
func (s *Store) Manifest() *images.Manifest { return s.m }

// Open returns the content of a regular-file entry (an images.OpenFunc).
func (s *Store) Open(ctx context.Context, e *images.Entry) (io.ReadCloser, error) {
	return s.c.OpenFile(ctx, e.SHA256)
}

// ReadFiles implements View; the store verifies every chunk it returns.
func (s *Store) ReadFiles(ctx context.Context, paths []string, fn func(string, io.Reader) error) error {
	for _, p := range paths {
		e, err := regular(s.label, s.m, p)
		if err != nil {
			return err
		}
		rc, err := s.c.OpenFile(ctx, e.SHA256)
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
