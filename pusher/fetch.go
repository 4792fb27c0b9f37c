package pusher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/delta"
	"github.com/ingotfleet/ingot/internal/beneath"
	"github.com/ingotfleet/ingot/pusher/api"
)

// statser is a Source that counts what it received.
type statser interface {
	Stats() (received, requests, failures int64)
}

// hostFile is a file on the host: a path beneath a tree (the root, or the
// agent's state directory for backups), opened only as a regular file.
type hostFile struct {
	t   *beneath.Dir
	rel string
}

// MaxDeltaFile is the largest file (old or new version) a sync rebuilds
// from a delta: a delta needs both versions whole in memory, every other
// source streams. Larger files come as chunks.
const MaxDeltaFile = 32 << 20

// deltaBudget bounds the bytes the deltas being applied at one time hold
// (old version, delta body and new version), over every parallel fetch.
const deltaBudget = 3 * MaxDeltaFile

// budget is a weighted semaphore of bytes.
type budget struct {
	mu   sync.Mutex
	cond *sync.Cond
	used int64
	max  int64
}

func newBudget(max int64) *budget {
	b := &budget{max: max}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *budget) acquire(n int64) {
	b.mu.Lock()
	for b.used > 0 && b.used+n > b.max {
		b.cond.Wait()
	}
	b.used += n
	b.mu.Unlock()
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// stage fetches and stages every put of the plan. Files already staged by
// an interrupted run are kept, so a restarted sync resumes.
func (s *Syncer) stage(ctx context.Context, plan *Plan, host []Node, st State, to images.Digest, stageDir string, src Source, res *api.Result) error {
	s.setPhase("fetch")
	stageTree, err := beneath.Open(stageDir)
	if err != nil {
		return err
	}
	defer stageTree.Close()
	stg := &stager{stage: stageTree, write: s.WriteLimit}
	local := s.localIndex(host, st)
	chunks := newLocalChunks(s.rootTree, plan)
	deltas := newBudget(deltaBudget)
	order, err := stageNodes(plan, stg)
	if err != nil {
		return err
	}
	s.progress.FilesTotal.Store(int64(plan.FetchFiles))
	s.progress.BytesTotal.Store(plan.FetchBytes)
	var before int64
	if ss, ok := src.(statser); ok {
		before, _, _ = ss.Stats()
	}
	var packs *deltaPacks
	if dp, ok := src.(deltaPacker); ok && !st.Image.IsZero() && st.Image != to && len(order) > 0 {
		packs = dp.deltaPacks(ctx, st.Image, to)
	}

	conc := s.Concurrency
	if conc <= 0 {
		conc = 8
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  = make(chan *fileGroup)
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
			cancel()
		}
		mu.Unlock()
	}
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range next {
				err := s.stageGroup(ctx, stg, g, func(w sink, todo []*Op) error {
					return s.fill(ctx, w, g.sha, g.size, todo, local, chunks, deltas, packs, src)
				})
				if err != nil {
					fail(err)
				}
			}
		}()
	}
	for _, g := range order {
		if ctx.Err() != nil {
			break
		}
		next <- g
	}
	close(next)
	wg.Wait()
	if ss, ok := src.(statser); ok {
		after, _, _ := ss.Stats()
		res.Fetched = after - before
	}
	res.Written = stg.written.Load()
	res.Deltas = s.progress.Deltas.Load()
	res.LocalFiles = s.progress.Local.Load()
	res.ReusedChunks = chunks.reused.Load()
	res.ReusedBytes = chunks.reusedB.Load()
	res.FetchedChunks = chunks.fetched.Load()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// fileGroup is the paths of one sync that get the same content.
type fileGroup struct {
	sha  images.Digest
	size int64
	ops  []*Op
}

// stageNodes stages the plan's puts of what is not a regular file
// (directories, symlinks, devices) and returns its regular files grouped
// by content, in plan order.
func stageNodes(plan *Plan, stg *stager) ([]*fileGroup, error) {
	groups := map[images.Digest]*fileGroup{}
	var order []*fileGroup
	for i := range plan.Ops {
		op := &plan.Ops[i]
		if op.Kind != OpPut {
			continue
		}
		if op.Entry.Type != images.TypeFile {
			if !stg.exists(op.Stage) {
				if err := stg.stageNode(op.Stage, op.Entry); err != nil {
					return nil, err
				}
			}
			continue
		}
		g := groups[op.Entry.SHA256]
		if g == nil {
			g = &fileGroup{sha: op.Entry.SHA256, size: op.Entry.Size}
			groups[g.sha] = g
			order = append(order, g)
		}
		g.ops = append(g.ops, op)
	}
	return order, nil
}

// stageGroup stages the paths of g not staged yet: the first path's file
// streams from fill; the others (same content) are copies of it.
func (s *Syncer) stageGroup(ctx context.Context, stg *stager, g *fileGroup, fill func(w sink, todo []*Op) error) error {
	var todo []*Op
	for _, op := range g.ops {
		if stg.exists(op.Stage) {
			s.progress.FilesDone.Add(1)
			s.progress.BytesDone.Add(g.size)
		} else {
			todo = append(todo, op)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	err := stg.stageFile(ctx, todo[0].Stage, todo[0].Entry, func(w sink) error { return fill(w, todo) })
	for i, op := range todo {
		if err == nil && i > 0 {
			err = stg.copyStaged(ctx, op.Stage, todo[0].Stage, op.Entry)
		}
		if err != nil {
			return err
		}
		s.progress.FilesDone.Add(1)
		s.progress.BytesDone.Add(g.size)
	}
	return nil
}

// localIndex maps content hashes to files on the host that hold them:
// the scanned root and the backups of the last commit.
func (s *Syncer) localIndex(host []Node, st State) map[images.Digest]hostFile {
	local := map[images.Digest]hostFile{}
	for i := range host {
		if host[i].Type == images.TypeFile && !host[i].SHA256.IsZero() {
			if _, ok := local[host[i].SHA256]; !ok {
				local[host[i].SHA256] = hostFile{s.rootTree, host[i].Path}
			}
		}
	}
	for sha, name := range st.Backups {
		d, err := images.ParseDigest(sha)
		if err != nil {
			continue
		}
		if _, ok := local[d]; !ok {
			local[d] = hostFile{s.stateTree, fmt.Sprintf("backup/%d/%s", st.Generation, name)}
		}
	}
	s.seedIndex(local)
	return local
}

// fill writes content sha (size bytes) to w from the first source that
// has it: the host itself (any path, or what the last commit replaced), a
// delta against the host's old version of the same path (files up to
// MaxDeltaFile), or its chunks, those the host holds in files the sync
// replaces read locally and only the others fetched (a Source that is not
// a ChunkSource gives the whole object). A source whose bytes do not hash
// to sha is dropped for the next one.
func (s *Syncer) fill(ctx context.Context, w sink, sha images.Digest, size int64, ops []*Op, local map[images.Digest]hostFile, chunks *localChunks, deltas *budget, packs *deltaPacks, src Source) error {
	done := func() bool { return w.Len() == size && w.Sum() == sha }
	if hf, ok := local[sha]; ok && hf.t != nil {
		if f, err := hf.t.OpenRegular(hf.rel); err == nil {
			_, err = io.CopyBuffer(w, io.LimitReader(f, size+1), make([]byte, 256<<10))
			f.Close()
			if err == nil && done() {
				s.progress.Local.Add(1)
				return nil
			}
			if err := w.Reset(); err != nil {
				return err
			}
		}
	}
	if size <= MaxDeltaFile && deltas != nil {
		for _, op := range ops {
			key := delta.Key{From: op.DeltaFrom, To: sha}
			if op.DeltaFrom.IsZero() || (packs != nil && !packs.exists[key]) {
				continue
			}
			old, err := readRegular(s.rootTree, op.Path, MaxDeltaFile)
			if err != nil || images.Sum(old) != op.DeltaFrom {
				continue
			}
			// The old version, the delta's body (at most about the
			// new version's size) and the new version; for a delta of
			// gzip files, both decompressed too.
			weight := int64(len(old)) + 2*size + 2*delta.GzMaxRaw
			deltas.acquire(weight)
			var b []byte
			if body, ok := packs.body(key); ok {
				b, err = delta.Apply("packed delta for "+op.Path, body, old, op.DeltaFrom, sha, size)
			} else {
				b, err = src.Delta(ctx, op.DeltaFrom, sha, old, size)
			}
			if err == nil {
				_, err = w.Write(b)
			}
			deltas.release(weight)
			if err == nil && done() {
				s.progress.Deltas.Add(1)
				return nil
			}
			if rerr := w.Reset(); rerr != nil {
				return rerr
			}
			if !errors.Is(err, ErrNotFound) && s.Log != nil {
				s.Log.Warn("delta failed; fetching the whole file", "path", op.Path, "err", err)
			}
			break
		}
	}
	var err error
	if cs, ok := src.(ChunkSource); ok {
		err = writeChunks(ctx, w, cs, sha, size, chunks)
	} else {
		var b []byte
		if b, err = src.Object(ctx, sha, size); err == nil {
			_, err = w.Write(b)
		}
	}
	if err == nil && !done() {
		err = fmt.Errorf("content %s: the bytes received hash to %s: %w", sha, w.Sum(), ErrCorrupt)
	}
	if err != nil {
		return fmt.Errorf("fetching %s (%s): %w", ops[0].Path, sha, err)
	}
	return nil
}

// readRegular reads a regular file of at most max bytes whole.
func readRegular(t *beneath.Dir, rel string, max int64) ([]byte, error) {
	if t == nil {
		return nil, errors.New("no tree")
	}
	f, err := t.OpenRegular(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", t.Abs(rel), max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		err = fmt.Errorf("%s: larger than %d bytes", t.Abs(rel), max)
	}
	return b, err
}

// deltaPacks are the packed deltas of a sync's image pair (store delta
// packs): their bodies, and every delta of the pair, packed or stored
// alone, so that no delta that does not exist is asked for.
type deltaPacks struct {
	bodies map[delta.Key][]byte
	exists map[delta.Key]bool
}

func (p *deltaPacks) body(k delta.Key) ([]byte, bool) {
	if p == nil {
		return nil, false
	}
	b, ok := p.bodies[k]
	return b, ok
}

// deltaPacker is a Source that serves delta packs.
type deltaPacker interface {
	deltaPacks(ctx context.Context, a, b images.Digest) *deltaPacks
}

// deltaPacks reads the delta packs from image a to b; nil when the store
// has none or one of them cannot be read (then every delta is asked for
// alone, as without packs). What it holds is bounded by
// delta.MaxPacks packs of bounded size.
func (s *StoreSource) deltaPacks(ctx context.Context, a, b images.Digest) *deltaPacks {
	p := &deltaPacks{bodies: map[delta.Key][]byte{}, exists: map[delta.Key]bool{}}
	for k := 0; k < delta.MaxPacks; k++ {
		dp, err := s.st.DeltaPack(ctx, a, b, k)
		if err = s.read(fmt.Sprintf("delta pack %d", k), err); err != nil {
			if !errors.Is(err, ErrNotFound) && s.log != nil {
				s.log.Warn("delta packs not used", "err", err)
			}
			return nil
		}
		for key, body := range dp.Bodies {
			p.bodies[key] = body
			p.exists[key] = true
		}
		for _, key := range dp.Alone {
			p.exists[key] = true
		}
		if !dp.More {
			return p
		}
	}
	return nil
}
