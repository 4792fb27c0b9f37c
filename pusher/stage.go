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
	"github.com/ingotfleet/ingot/pusher/commit"
	"github.com/ingotfleet/ingot/pusher/fetch"
	"github.com/ingotfleet/ingot/pusher/plan"
)

// statser is a Source that counts what it received.
type statser interface {
	Stats() (received, requests, failures int64)
}

// deltaPacker is a Source that serves delta packs.
type deltaPacker interface {
	DeltaPacks(ctx context.Context, a, b images.Digest) *fetch.DeltaPacks
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
func (s *Syncer) stage(ctx context.Context, pl *plan.Plan, host []Node, st State, to images.Digest, stageDir string, src fetch.Source, res *api.Result) error {
	s.setPhase("fetch")
	stageTree, err := beneath.Open(stageDir)
	if err != nil {
		return err
	}
	defer stageTree.Close()
	stg := &commit.Stager{Stage: stageTree, Write: s.WriteLimit, Hooks: hooks}
	local := s.localIndex(host, st)
	chunks := newLocalChunks(s.rootTree, pl)
	deltas := newBudget(deltaBudget)
	order, err := stageNodes(pl, stg)
	if err != nil {
		return err
	}
	s.progress.FilesTotal.Store(int64(pl.FetchFiles))
	s.progress.BytesTotal.Store(pl.FetchBytes)
	var before int64
	if ss, ok := src.(statser); ok {
		before, _, _ = ss.Stats()
	}
	var packs *fetch.DeltaPacks
	if dp, ok := src.(deltaPacker); ok && !st.Image.IsZero() && st.Image != to && len(order) > 0 {
		packs = dp.DeltaPacks(ctx, st.Image, to)
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
				err := s.stageGroup(ctx, stg, g, func(w fetch.Sink, todo []*plan.Op) error {
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
	res.Written = stg.Written.Load()
	res.Deltas = s.progress.Deltas.Load()
	res.LocalFiles = s.progress.Local.Load()
	res.ReusedChunks = chunks.Reused.Load()
	res.ReusedBytes = chunks.ReusedBytes.Load()
	res.FetchedChunks = chunks.Fetched.Load()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// newLocalChunks indexes the host files the plan replaces or removes for
// the chunks they hold.
func newLocalChunks(root *beneath.Dir, pl *plan.Plan) *fetch.LocalChunks {
	var files []fetch.HostFile
	if root != nil {
		seen := map[images.Digest]bool{}
		for _, op := range pl.Ops {
			if op.OldSHA.IsZero() || seen[op.OldSHA] {
				continue
			}
			seen[op.OldSHA] = true
			files = append(files, fetch.HostFile{Dir: root, Rel: op.Path})
		}
	}
	return fetch.NewLocalChunks(files)
}

// fileGroup is the paths of one sync that get the same content.
type fileGroup struct {
	sha  images.Digest
	size int64
	ops  []*plan.Op
}

// stageNodes stages the plan's puts of what is not a regular file
// (directories, symlinks, devices) and returns its regular files grouped
// by content, in plan order.
func stageNodes(pl *plan.Plan, stg *commit.Stager) ([]*fileGroup, error) {
	groups := map[images.Digest]*fileGroup{}
	var order []*fileGroup
	for i := range pl.Ops {
		op := &pl.Ops[i]
		if op.Kind != plan.OpPut {
			continue
		}
		if op.Entry.Type != images.TypeFile {
			if !stg.Exists(op.Stage) {
				if err := stg.StageNode(op.Stage, op.Entry); err != nil {
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
func (s *Syncer) stageGroup(ctx context.Context, stg *commit.Stager, g *fileGroup, fill func(w fetch.Sink, todo []*plan.Op) error) error {
	var todo []*plan.Op
	for _, op := range g.ops {
		if stg.Exists(op.Stage) {
			s.progress.FilesDone.Add(1)
			s.progress.BytesDone.Add(g.size)
		} else {
			todo = append(todo, op)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	err := stg.StageFile(ctx, todo[0].Stage, todo[0].Entry, func(w fetch.Sink) error { return fill(w, todo) })
	for i, op := range todo {
		if err == nil && i > 0 {
			err = stg.CopyStaged(ctx, op.Stage, todo[0].Stage, op.Entry)
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
func (s *Syncer) localIndex(host []Node, st State) map[images.Digest]fetch.HostFile {
	local := map[images.Digest]fetch.HostFile{}
	for i := range host {
		if host[i].Type == images.TypeFile && !host[i].SHA256.IsZero() {
			if _, ok := local[host[i].SHA256]; !ok {
				local[host[i].SHA256] = fetch.HostFile{Dir: s.rootTree, Rel: host[i].Path}
			}
		}
	}
	for sha, name := range st.Backups {
		d, err := images.ParseDigest(sha)
		if err != nil {
			continue
		}
		if _, ok := local[d]; !ok {
			local[d] = fetch.HostFile{Dir: s.stateTree, Rel: fmt.Sprintf("backup/%d/%s", st.Generation, name)}
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
func (s *Syncer) fill(ctx context.Context, w fetch.Sink, sha images.Digest, size int64, ops []*plan.Op, local map[images.Digest]fetch.HostFile, chunks *fetch.LocalChunks, deltas *budget, packs *fetch.DeltaPacks, src fetch.Source) error {
	done := func() bool { return w.Len() == size && w.Sum() == sha }
	if hf, ok := local[sha]; ok && hf.Dir != nil {
		if f, err := hf.Dir.OpenRegular(hf.Rel); err == nil {
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
			if op.DeltaFrom.IsZero() || (packs != nil && !packs.Has(key)) {
				continue
			}
			b, err := readRegular(s.rootTree, op.Path, MaxDeltaFile)
			if err != nil {
				continue
			}
			// Hashed once, here: the delta's base is checked against
			// DeltaFrom before it is read, and again (without hashing)
			// by ApplyBase.
			old := delta.NewBase(b)
			if old.Sum() != op.DeltaFrom {
				continue
			}
			// The old version, the delta's body (at most about the
			// new version's size) and the new version; for a delta of
			// gzip files, both decompressed too.
			weight := int64(len(b)) + 2*size + 2*delta.GzMaxRaw
			deltas.acquire(weight)
			if body, ok := packs.Body(key); ok {
				b, err = delta.ApplyBase("packed delta for "+op.Path, body, old, op.DeltaFrom, sha, size)
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
			if !errors.Is(err, fetch.ErrNotFound) && s.Log != nil {
				s.Log.Warn("delta failed; fetching the whole file", "path", op.Path, "err", err)
			}
			break
		}
	}
	var err error
	if cs, ok := src.(fetch.ChunkSource); ok {
		err = fetch.WriteChunks(ctx, w, cs, sha, size, chunks)
	} else {
		var b []byte
		if b, err = src.Object(ctx, sha, size); err == nil {
			_, err = w.Write(b)
		}
	}
	if err == nil && !done() {
		err = fmt.Errorf("content %s: the bytes received hash to %s: %w", sha, w.Sum(), fetch.ErrCorrupt)
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
