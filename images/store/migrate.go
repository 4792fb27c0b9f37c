package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/images/store/pack"
)

// MigrateStats says what Migrate did.
type MigrateStats struct {
	From, To int // layout versions
	Packed   int // loose objects copied into packs
	Removed  int // loose objects removed (their packed copy is durable)
	Images   int // image pack indexes written
}

// Migrate converts the local store in dir from layout v1 to v2 in place,
// crash-safely: every chunk object is read, verified and copied into
// packs; each image gets its image pack index; one syncfs makes all of it
// durable; then the layout marker is rewritten (atomically, durably), the
// commit point; only then are the loose copies removed. A crash before the
// commit leaves a v1 store with unused packs (a new run reuses them), one
// after it a v2 store with loose copies its readers ignore (a new run
// removes them). Manifests, chunk lists, indexes, refs, signatures and
// deltas stay as they are, so every image keeps its digest and exports the
// same bytes. Migrating a v2 store only finishes the removal.
func Migrate(ctx context.Context, dir string, progress ProgressFunc) (MigrateStats, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	if _, err := os.Stat(filepath.Join(dir, backend.MarkerFile)); err != nil {
		return MigrateStats{}, fmt.Errorf("migrating %s: not a store (%w)", dir, err)
	}
	b, err := backend.OpenLocal(dir)
	if err != nil {
		return MigrateStats{}, err
	}
	s := New(b)
	defer func() { _ = s.Close() }() // Close releases the coders: nothing to flush
	st := MigrateStats{From: b.LayoutVersion(), To: LayoutV2}
	imgs, loose, err := migrateNames(ctx, b)
	if err != nil {
		return st, err
	}
	if st.From == LayoutV1 {
		if st.Packed, err = s.packLoose(ctx, loose, progress); err != nil {
			return st, fmt.Errorf("migrating %s: %w", dir, err)
		}
		if st.Images, err = s.putImagePacks(ctx, imgs, progress); err != nil {
			return st, fmt.Errorf("migrating %s: %w", dir, err)
		}
		progress(Progress{Phase: "sync"})
		if err := b.Sync(ctx); err != nil {
			return st, err
		}
		if err := b.SetLayoutVersion(LayoutV2); err != nil {
			return st, err
		}
	}
	// The packs are durable and the store says v2: the loose copies of
	// packed objects can go.
	if st.Removed, err = s.removePacked(ctx, dir, loose, progress); err != nil {
		return st, err
	}
	// Shard folders stay: v2 keeps manifests there.
	if err := b.Sync(ctx); err != nil {
		return st, err
	}
	return st, nil
}

// migrateNames lists the images of the store in b, and its loose objects
// but the images' manifests (which stay loose: readers look for them
// there), each sorted.
func migrateNames(ctx context.Context, b Backend) (imgs, loose []images.Digest, err error) {
	keep := map[images.Digest]bool{}
	if err := b.List(ctx, KindImage, func(n string) error {
		d, err := images.ParseDigest(n)
		if err == nil {
			imgs = append(imgs, d)
			keep[d] = true
		}
		return nil
	}); err != nil {
		return nil, nil, err
	}
	slices.SortFunc(imgs, func(a, b images.Digest) int { return slices.Compare(a[:], b[:]) })
	if err := b.List(ctx, KindObject, func(n string) error {
		if d, err := images.ParseDigest(n); err == nil && !keep[d] {
			loose = append(loose, d)
		}
		return nil
	}); err != nil {
		return nil, nil, err
	}
	slices.SortFunc(loose, func(a, b images.Digest) int { return slices.Compare(a[:], b[:]) })
	return imgs, loose, nil
}

// packLoose writes every loose object of at most a chunk into packs and
// returns how many.
func (s *Store) packLoose(ctx context.Context, loose []images.Digest, progress ProgressFunc) (int, error) {
	p := s.newPutterLayout(ctx, false, LayoutV2)
	n := 0
	for i, d := range loose {
		if err := ctx.Err(); err != nil {
			p.fail(err)
			break
		}
		data, err := s.getObject(p.ctx, d, MaxManifest)
		if err != nil {
			p.fail(fmt.Errorf("%s: %w (run ingot image verify --all)", DigestHandle(KindObject, d), err))
			break
		}
		if len(data) <= MaxChunk {
			p.seen[d] = true
			if err := p.queuePacked(d, data); err != nil {
				break
			}
			n++
		}
		progress(Progress{Phase: "objects", Done: i + 1, Total: len(loose)})
	}
	return n, p.wait()
}

// putImagePacks writes the image pack index of every image and returns
// how many it wrote.
func (s *Store) putImagePacks(ctx context.Context, imgs []images.Digest, progress ProgressFunc) (int, error) {
	n := 0
	for i, d := range imgs {
		m, err := s.Manifest(ctx, d)
		if err != nil {
			return n, err
		}
		ix, err := s.IndexOf(ctx, d, IndexLimit(m))
		if err != nil {
			return n, err
		}
		if pe := s.packs.ImageEntries(m, ix); len(pe) > 0 {
			if err := s.b.Put(ctx, DigestHandle(KindImagePacks, d), pack.FormatIndex(pe), false); err != nil {
				return n, err
			}
			n++
		}
		progress(Progress{Phase: "images", Done: i + 1, Total: len(imgs)})
	}
	return n, nil
}

// removePacked removes the loose copies of packed objects from the store
// in dir and returns how many.
func (s *Store) removePacked(ctx context.Context, dir string, loose []images.Digest, progress ProgressFunc) (int, error) {
	if _, err := s.packs.LoadIndexes(ctx); err != nil {
		return 0, err
	}
	n := 0
	for i, d := range loose {
		if _, ok := s.packs.Lookup(d); !ok {
			continue // larger than a chunk, or a v2 store's own loose object
		}
		// Not Backend.Delete, which syncs the folder after each file: the
		// caller syncs once at the end.
		p := filepath.Join(dir, filepath.FromSlash(DigestHandle(KindObject, d).Path()))
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("migrating %s: %w", dir, err)
		}
		n++
		if i%256 == 0 {
			progress(Progress{Phase: "remove", Done: i + 1, Total: len(loose)})
		}
	}
	return n, nil
}
