package pusher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"golang.org/x/sys/unix"
)

func openNoFollow(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_RDONLY|unix.O_NOFOLLOW, 0)
}

// chunkFetchers is how many chunks of one file are fetched at once (on
// top of the sync's file concurrency).
const chunkFetchers = 4

// assemble puts content sha together from its chunks: those local holds
// are read from the host, the others fetched from cs. The whole is
// checked against sha and size.
func assemble(ctx context.Context, cs ChunkSource, sha images.Digest, size int64, local *localChunks) ([]byte, error) {
	chunks, err := cs.Chunks(ctx, sha, size)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, c := range chunks {
		total += c.Size
	}
	if total != size {
		return nil, fmt.Errorf("content %s: chunks add up to %d bytes, want %d: %w", sha, total, size, ErrCorrupt)
	}
	out := make([]byte, size)
	offs := make([]int64, len(chunks))
	var missing []int
	var off int64
	for i, c := range chunks {
		offs[i] = off
		off += c.Size
		if local != nil && local.read(c, out[offs[i]:offs[i]+c.Size]) {
			continue
		}
		missing = append(missing, i)
	}
	if len(missing) > 0 {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var (
			next  atomic.Int64
			wg    sync.WaitGroup
			mu    sync.Mutex
			first error
		)
		for range min(chunkFetchers, len(missing)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					k := int(next.Add(1)) - 1
					if k >= len(missing) || ctx.Err() != nil {
						return
					}
					i := missing[k]
					b, err := cs.Chunk(ctx, chunks[i])
					if err != nil {
						mu.Lock()
						if first == nil {
							first = err
							cancel()
						}
						mu.Unlock()
						return
					}
					copy(out[offs[i]:], b)
				}
			}()
		}
		wg.Wait()
		if first != nil {
			return nil, first
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if local != nil {
			local.fetched.Add(int64(len(missing)))
		}
	}
	if got := images.Sum(out); got != sha {
		return nil, fmt.Errorf("content %s: chunks join to %s: %w", sha, got, ErrCorrupt)
	}
	return out, nil
}

// localChunks finds chunks in files the host already has: the current
// versions of the files a sync replaces or removes. They are cut with the
// store's chunker, so an old version of a file (at any path) lends every
// chunk the new version shares with it. The index is built on first use.
type localChunks struct {
	files []string // absolute paths

	once sync.Once
	idx  map[images.Digest]chunkLoc

	reused  atomic.Int64 // chunks read from the host
	reusedB atomic.Int64 // their bytes
	fetched atomic.Int64 // chunks fetched
}

type chunkLoc struct {
	file int
	off  int64
}

// newLocalChunks indexes the host files the plan replaces or removes.
func newLocalChunks(root string, plan *Plan) *localChunks {
	l := &localChunks{}
	seen := map[images.Digest]bool{}
	for _, op := range plan.Ops {
		if op.OldSHA.IsZero() || seen[op.OldSHA] {
			continue
		}
		seen[op.OldSHA] = true
		l.files = append(l.files, filepath.Join(root, op.Path))
	}
	return l
}

func (l *localChunks) build() {
	l.idx = map[images.Digest]chunkLoc{}
	for i, name := range l.files {
		f, err := openNoFollow(name)
		if err != nil {
			continue
		}
		c := store.NewChunker(f)
		var off int64
		for {
			b, err := c.Next()
			if err != nil {
				break
			}
			id := images.Sum(b)
			if _, ok := l.idx[id]; !ok {
				l.idx[id] = chunkLoc{i, off}
			}
			off += int64(len(b))
		}
		f.Close()
	}
}

// read fills buf with chunk c from the host if a local file holds it
// (checked against c.ID now: the file may have changed since indexing).
func (l *localChunks) read(c store.Chunk, buf []byte) bool {
	if len(l.files) == 0 {
		return false
	}
	l.once.Do(l.build)
	loc, ok := l.idx[c.ID]
	if !ok {
		return false
	}
	f, err := openNoFollow(l.files[loc.file])
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.ReadAt(buf, loc.off); err != nil {
		return false
	}
	if images.Sum(buf) != c.ID {
		return false
	}
	l.reused.Add(1)
	l.reusedB.Add(c.Size)
	return true
}
