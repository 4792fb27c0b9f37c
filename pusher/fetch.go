package pusher

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/ingotfleet/ingot/images"
)

// statser is a Source that counts what it received.
type statser interface {
	Stats() (received, requests, failures int64)
}

// stage fetches and stages every put of the plan. Files already staged by
// an interrupted run are kept, so a restarted sync resumes.
func (s *Syncer) stage(ctx context.Context, plan *Plan, host []Node, st State, stageDir string, src Source, res *Result) error {
	s.setPhase("fetch")
	stg := &stager{root: s.Root, stage: stageDir, write: s.WriteLimit}
	local := s.localIndex(host, st)
	chunks := newLocalChunks(s.Root, plan)
	type group struct {
		sha  images.Digest
		size int64
		ops  []*Op
	}
	groups := map[images.Digest]*group{}
	var order []*group
	for i := range plan.Ops {
		op := &plan.Ops[i]
		if op.Kind != OpPut {
			continue
		}
		if op.Entry.Type != images.TypeFile {
			if !stg.exists(op.Stage) {
				if err := stg.stageNode(op.Stage, op.Entry); err != nil {
					return err
				}
			}
			continue
		}
		g := groups[op.Entry.SHA256]
		if g == nil {
			g = &group{sha: op.Entry.SHA256, size: op.Entry.Size}
			groups[g.sha] = g
			order = append(order, g)
		}
		g.ops = append(g.ops, op)
	}
	s.progress.FilesTotal.Store(int64(plan.FetchFiles))
	s.progress.BytesTotal.Store(plan.FetchBytes)
	var before int64
	if ss, ok := src.(statser); ok {
		before, _, _ = ss.Stats()
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
		next  = make(chan *group)
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
					continue
				}
				content, err := s.content(ctx, g.sha, g.size, todo, local, chunks, src)
				if err != nil {
					fail(err)
					continue
				}
				for _, op := range todo {
					if err := stg.stageFile(ctx, op.Stage, op.Entry, content); err != nil {
						fail(err)
						break
					}
					s.progress.FilesDone.Add(1)
					s.progress.BytesDone.Add(g.size)
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

// localIndex maps content hashes to files on the host that hold them:
// the scanned root and the backups of the last commit.
func (s *Syncer) localIndex(host []Node, st State) map[images.Digest]string {
	local := map[images.Digest]string{}
	for i := range host {
		if host[i].Type == images.TypeFile && !host[i].SHA256.IsZero() {
			if _, ok := local[host[i].SHA256]; !ok {
				local[host[i].SHA256] = filepath.Join(s.Root, host[i].Path)
			}
		}
	}
	for sha, name := range st.Backups {
		d, err := images.ParseDigest(sha)
		if err != nil {
			continue
		}
		if _, ok := local[d]; !ok {
			local[d] = s.path("backup", fmt.Sprint(st.Generation), name)
		}
	}
	return local
}

// content finds a file's content: on the host already (any path, or what
// the last commit replaced), rebuilt from a delta against the host's old
// version of the same path, or put together from chunks, those the host
// holds in files the sync replaces read locally and only the others
// fetched (a Source that is not a ChunkSource gives the whole object).
func (s *Syncer) content(ctx context.Context, sha images.Digest, size int64, ops []*Op, local map[images.Digest]string, chunks *localChunks, src Source) ([]byte, error) {
	if name, ok := local[sha]; ok {
		if b, err := readNoFollow(name); err == nil && images.Sum(b) == sha {
			s.progress.Local.Add(1)
			return b, nil
		}
	}
	for _, op := range ops {
		if op.DeltaFrom.IsZero() {
			continue
		}
		old, err := readNoFollow(filepath.Join(s.Root, op.Path))
		if err != nil || images.Sum(old) != op.DeltaFrom {
			continue
		}
		b, err := src.Delta(ctx, op.DeltaFrom, sha, old)
		if err == nil {
			s.progress.Deltas.Add(1)
			return b, nil
		}
		if !errors.Is(err, ErrNotFound) && s.Log != nil {
			s.Log.Warn("delta failed; fetching the whole file", "path", op.Path, "err", err)
		}
		break
	}
	var b []byte
	var err error
	if cs, ok := src.(ChunkSource); ok {
		b, err = assemble(ctx, cs, sha, size, chunks)
	} else {
		b, err = src.Object(ctx, sha, size)
	}
	if err != nil {
		return nil, fmt.Errorf("fetching %s (%s): %w", ops[0].Path, sha, err)
	}
	return b, nil
}
