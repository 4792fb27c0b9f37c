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
	defer s.Close()
	st := MigrateStats{From: b.LayoutVersion(), To: LayoutV2}

	var imgs []images.Digest
	keep := map[images.Digest]bool{} // image manifests stay loose: readers look for them there
	if err := b.List(ctx, KindImage, func(n string) error {
		d, err := images.ParseDigest(n)
		if err == nil {
			imgs = append(imgs, d)
			keep[d] = true
		}
		return nil
	}); err != nil {
		return st, err
	}
	slices.SortFunc(imgs, func(a, b images.Digest) int { return slices.Compare(a[:], b[:]) })
	var loose []images.Digest
	if err := b.List(ctx, KindObject, func(n string) error {
		if d, err := images.ParseDigest(n); err == nil && !keep[d] {
			loose = append(loose, d)
		}
		return nil
	}); err != nil {
		return st, err
	}
	slices.SortFunc(loose, func(a, b images.Digest) int { return slices.Compare(a[:], b[:]) })

	if st.From == LayoutV1 {
		p := s.newPutterLayout(ctx, false, LayoutV2)
		for i, d := range loose {
			if err := ctx.Err(); err != nil {
				p.fail(err)
				break
			}
			data, err := s.getObject(p.ctx, d, MaxManifest)
			if err != nil {
				p.fail(fmt.Errorf("migrating %s: %w (run ingot image verify --all)", DigestHandle(KindObject, d), err))
				break
			}
			if len(data) <= MaxChunk {
				p.seen[d] = true
				if err := p.queuePacked(d, data); err != nil {
					break
				}
				st.Packed++
			}
			progress(Progress{Phase: "objects", Done: i + 1, Total: len(loose)})
		}
		if err := p.wait(); err != nil {
			return st, fmt.Errorf("migrating %s: %w", dir, err)
		}
		for i, d := range imgs {
			m, err := s.Manifest(ctx, d)
			if err != nil {
				return st, fmt.Errorf("migrating %s: %w", dir, err)
			}
			ix, err := s.IndexOf(ctx, d, IndexLimit(m))
			if err != nil {
				return st, fmt.Errorf("migrating %s: %w", dir, err)
			}
			if pe := s.imagePackEntries(m, ix); len(pe) > 0 {
				if err := b.Put(ctx, DigestHandle(KindImagePacks, d), formatPackIndex(pe), false); err != nil {
					return st, err
				}
				st.Images++
			}
			progress(Progress{Phase: "images", Done: i + 1, Total: len(imgs)})
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
	if _, err := s.loadPackIndexes(ctx); err != nil {
		return st, err
	}
	for i, d := range loose {
		if _, ok := s.lookup(d); !ok {
			continue // larger than a chunk, or a v2 store's own loose object
		}
		// Not b.Delete, which syncs the folder after each file: one Sync
		// at the end suffices.
		p := filepath.Join(dir, filepath.FromSlash(DigestHandle(KindObject, d).Path()))
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return st, fmt.Errorf("migrating %s: %w", dir, err)
		}
		st.Removed++
		if i%256 == 0 {
			progress(Progress{Phase: "remove", Done: i + 1, Total: len(loose)})
		}
	}
	// Shard folders stay: v2 keeps manifests there.
	if err := b.Sync(ctx); err != nil {
		return st, err
	}
	return st, nil
}
