package store

import (
	"context"
	"fmt"
	"io"

	"github.com/ingotfleet/ingot/images"
)

// ImportDir records the directory tree at root as an image, like Import
// does a tar: images.WalkDir with opts makes the manifest and every
// regular file's content is stored in chunks on the way. It returns the
// image digest and its manifest.
func (s *Store) ImportDir(ctx context.Context, root string, opts images.WalkOptions) (images.Digest, *images.Manifest, error) {
	p := s.newPutter(ctx, false)
	lists := Index{}
	m, err := images.WalkDir(p.ctx, root, opts, func(e *images.Entry, content io.Reader) error {
		sha, _, chunks, err := p.putFile(content)
		if err != nil {
			return fmt.Errorf("storing %s: %w", images.Escape(e.Path), err)
		}
		if chunks != nil {
			lists[sha] = chunks
		}
		return nil
	})
	if werr := p.wait(); err == nil {
		err = werr
	}
	if err != nil {
		return images.Digest{}, nil, fmt.Errorf("importing %s: %w", root, err)
	}
	if err := s.b.Sync(ctx); err != nil {
		return images.Digest{}, nil, err
	}
	d, err := s.putManifest(ctx, m, lists)
	if err != nil {
		return d, nil, fmt.Errorf("importing %s: %w", root, err)
	}
	return d, m, nil
}
