package store

import (
	"context"
	"fmt"
	"io"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/images/imagetar"
)

// ImportOptions tunes Import.
type ImportOptions struct {
	// Name names the input in errors (a file name); "tar" when empty.
	Name string
	// Progress, if set, is called after each regular file (phase
	// "files"), then as the import syncs the store ("sync") and writes
	// the manifest ("manifest").
	Progress ProgressFunc
}

// Import reads a tar stream (plain, gzip or zstd) into the store and
// returns the image digest. The tar is checked by imagetar.Read: hostile
// entries are refused with an error naming them, and nothing is written
// outside the store (refused input can leave unreferenced objects inside
// it, which are harmless).
//
// Objects are written without an fsync each; one syncfs of the store
// before the manifest is written makes them all durable at once, which is
// far cheaper than thousands of fsyncs, and as safe: the image only
// becomes visible (its index written, durably) after everything it names
// is on disk.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (images.Digest, error) {
	p := s.newPutter(ctx, false)
	lists := Index{}
	files := 0
	// The putter hashes every file as it cuts it: ReadTar does not hash
	// it again (FnHashes).
	m, err := imagetar.Read(p.ctx, r, imagetar.Options{Name: opts.Name, FnHashes: true}, func(e *images.Entry, content io.Reader) error {
		sha, _, chunks, err := p.putFile(content)
		if err != nil {
			return fmt.Errorf("storing %s: %w", images.Escape(e.Path), err)
		}
		e.SHA256 = sha
		if chunks != nil {
			lists[sha] = chunks
		}
		files++
		if opts.Progress != nil {
			opts.Progress(Progress{Phase: "files", Done: files})
		}
		return nil
	})
	if werr := p.wait(); err == nil {
		err = werr
	}
	if err != nil {
		return images.Digest{}, err
	}
	if opts.Progress != nil {
		opts.Progress(Progress{Phase: "sync", Done: files, Total: files})
	}
	if err := s.b.Sync(ctx); err != nil {
		return images.Digest{}, err
	}
	if opts.Progress != nil {
		opts.Progress(Progress{Phase: "manifest", Done: files, Total: files})
	}
	return s.putManifest(ctx, m, lists)
}

// Export writes image d as a deterministic tar (imagetar.Write) to w,
// compressed as c. Every byte is verified on the way out.
func (s *Store) Export(ctx context.Context, d images.Digest, w io.Writer, c compression.Compression) error {
	m, err := s.Manifest(ctx, d)
	if err != nil {
		return err
	}
	cw, err := compression.NewCompressor(w, c)
	if err != nil {
		return err
	}
	pf := s.newPrefetcher(ctx, m)
	err = imagetar.Write(ctx, cw, m, pf.open)
	pf.close()
	if cerr := cw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("exporting image %s: %w", d, err)
	}
	return nil
}
