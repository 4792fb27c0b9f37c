package fetch

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/images/store/chunks"
)

// chunkFetchers is how many chunks of one file are fetched at once (on
// top of the sync's file concurrency).
const chunkFetchers = 4

// assemble returns content sha put together from its chunks in memory
// (for callers that want bytes: Source.Object). A sync streams instead
// (WriteChunks into the staged file).
func assemble(ctx context.Context, cs ChunkSource, sha images.Digest, size int64, local *LocalChunks) ([]byte, error) {
	m := &MemSink{Max: size}
	if err := WriteChunks(ctx, m, cs, sha, size, local); err != nil {
		return nil, err
	}
	if got := m.Sum(); got != sha {
		return nil, fmt.Errorf("content %s: chunks join to %s: %w", sha, got, ErrCorrupt)
	}
	return m.Bytes(), nil
}

// WriteChunks writes content sha from its chunks to w, in order: those
// local holds are read from the host, the others fetched from cs, up to
// chunkFetchers at once. Memory holds at most chunkFetchers chunks
// (store.MaxChunk each), whatever the file's size. The caller checks the
// whole against sha.
func WriteChunks(ctx context.Context, w io.Writer, cs ChunkSource, sha images.Digest, size int64, local *LocalChunks) error {
	chunks, err := cs.Chunks(ctx, sha, size)
	if err != nil {
		return err
	}
	var total int64
	for _, c := range chunks {
		if c.Size < 0 || c.Size > store.MaxChunk {
			return fmt.Errorf("content %s: a chunk of %d bytes (the most is %d): %w", sha, c.Size, store.MaxChunk, ErrCorrupt)
		}
		total += c.Size
	}
	if total != size {
		return fmt.Errorf("content %s: chunks add up to %d bytes, want %d: %w", sha, total, size, ErrCorrupt)
	}
	// The previous window's last chunk: a run of one chunk (zeros) is
	// fetched once.
	var prevID images.Digest
	var prev []byte
	for i := 0; i < len(chunks); i += chunkFetchers {
		batch := chunks[i:min(i+chunkFetchers, len(chunks))]
		data := make([][]byte, len(batch))
		same := make([]int, len(batch)) // index of the first of the batch with the same id
		var missing []int
		for k, c := range batch {
			same[k] = k
			for j := 0; j < k; j++ {
				if batch[j].ID == c.ID {
					same[k] = j
					break
				}
			}
			if same[k] != k {
				continue
			}
			if prev != nil && c.ID == prevID {
				data[k] = prev
				continue
			}
			if local != nil {
				buf := make([]byte, c.Size)
				if local.read(c, buf) {
					data[k] = buf
					continue
				}
			}
			missing = append(missing, k)
		}
		if len(missing) > 0 {
			if err := fetchChunks(ctx, cs, batch, missing, data); err != nil {
				return err
			}
			if local != nil {
				local.Fetched.Add(int64(len(missing)))
			}
		}
		for k := range batch {
			if _, err := w.Write(data[same[k]]); err != nil {
				return err
			}
		}
		last := len(batch) - 1
		prevID, prev = batch[last].ID, data[same[last]]
	}
	return ctx.Err()
}

// fetchChunks fetches batch[k] for every k of missing, in parallel, into data[k].
func fetchChunks(ctx context.Context, cs ChunkSource, batch []store.Chunk, missing []int, data [][]byte) error {
	if len(missing) == 1 {
		b, err := cs.Chunk(ctx, batch[missing[0]])
		data[missing[0]] = b
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, k := range missing {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := cs.Chunk(ctx, batch[k])
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
				return
			}
			data[k] = b
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// LocalChunks finds chunks in files the host already has: the current
// versions of the files a sync replaces or removes. They are cut with the
// store's chunker, so an old version of a file (at any path) lends every
// chunk the new version shares with it. The index is built on first use.
type LocalChunks struct {
	files []HostFile

	once sync.Once
	idx  map[images.Digest]chunkLoc

	Reused      atomic.Int64 // chunks read from the host
	ReusedBytes atomic.Int64 // their bytes
	Fetched     atomic.Int64 // chunks fetched
}

type chunkLoc struct {
	file int
	off  int64
}

// NewLocalChunks indexes files (on first use) for the chunks they hold.
func NewLocalChunks(files []HostFile) *LocalChunks { return &LocalChunks{files: files} }

func (l *LocalChunks) build() {
	l.idx = map[images.Digest]chunkLoc{}
	for i, hf := range l.files {
		f, err := hf.Dir.OpenRegular(hf.Rel)
		if err != nil {
			continue
		}
		c := chunks.NewChunker(f)
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
func (l *LocalChunks) read(c store.Chunk, buf []byte) bool {
	if len(l.files) == 0 {
		return false
	}
	l.once.Do(l.build)
	loc, ok := l.idx[c.ID]
	if !ok {
		return false
	}
	hf := l.files[loc.file]
	f, err := hf.Dir.OpenRegular(hf.Rel)
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
	l.Reused.Add(1)
	l.ReusedBytes.Add(c.Size)
	return true
}
