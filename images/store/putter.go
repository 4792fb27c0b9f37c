package store

import (
	"context"
	"crypto/sha256"
	"io"
	"sync"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/chunks"
	"github.com/ingotfleet/ingot/images/store/pack"
)

// putter stores file contents: the caller's goroutine cuts and hashes,
// workers compress and write. One putter serves a PutFile or a whole
// import; wait returns the first error of any worker.
type putter struct {
	ctx     context.Context
	cancel  context.CancelFunc
	s       *Store
	durable bool
	jobs    chan putJob
	wg      sync.WaitGroup

	mu   sync.Mutex
	seen map[images.Digest]bool // chunks queued or stored by this putter
	err  error

	// Layout v2: objects are gathered into frames (the caller's
	// goroutine), compressed by the workers and appended to packs.
	packed    bool
	pw        *pack.Writer
	batch     *[]byte
	batchObjs []pack.FrameObj

	// Stats, for progress and benchmarks.
	NewChunks, NewBytes int64
	wrote               bool // something was written: a Sync is due
}

type putJob struct {
	h    Handle
	data *[]byte         // returned to the pool after writing
	raw  []byte          // used when data is nil
	objs []pack.FrameObj // a frame for a pack: the objects in data
}

// newPutter returns a putter writing in the backend's layout.
func (s *Store) newPutter(ctx context.Context, durable bool) *putter {
	return s.newPutterLayout(ctx, durable, s.layout())
}

// newPutterLayout returns a putter writing objects in layout v.
func (s *Store) newPutterLayout(ctx context.Context, durable bool, v int) *putter {
	ctx, cancel := context.WithCancel(ctx)
	p := &putter{ctx: ctx, cancel: cancel, s: s, durable: durable, jobs: make(chan putJob, 2*s.workers), seen: map[images.Digest]bool{}}
	if v == LayoutV2 {
		p.packed = true
		p.pw = pack.NewWriter(s.packs, durable)
		// What is in a pack already is not stored again.
		if _, err := s.packs.LoadIndexes(ctx); err != nil {
			p.fail(err)
		}
	}
	for range s.workers {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

func (p *putter) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
		p.cancel()
	}
	p.mu.Unlock()
}

func (p *putter) work() {
	defer p.wg.Done()
	for j := range p.jobs {
		if p.ctx.Err() != nil {
			p.release(j)
			continue
		}
		data := j.raw
		if j.data != nil {
			data = *j.data
		}
		if j.objs != nil {
			bp := p.s.zFrameBufs.Get().(*[]byte)
			z := p.s.encoder().EncodeAll(data, (*bp)[:0])
			if err := p.pw.Add(p.ctx, z, j.objs); err != nil {
				p.fail(err)
			} else {
				p.mu.Lock()
				p.wrote = true
				p.mu.Unlock()
			}
			if cap(z) <= 2*pack.MaxFrame {
				*bp = z[:0]
				p.s.zFrameBufs.Put(bp)
			}
			p.release(j)
			continue
		}
		if j.h.Kind == KindObject {
			ok, err := p.s.b.Has(p.ctx, j.h)
			if err != nil {
				p.fail(err)
			}
			if ok || err != nil {
				p.release(j)
				continue
			}
			p.mu.Lock()
			p.NewChunks++
			p.NewBytes += int64(len(data))
			p.mu.Unlock()
		}
		if err := p.s.put(p.ctx, j.h, data, p.durable); err != nil {
			p.fail(err)
		} else {
			p.mu.Lock()
			p.wrote = true
			p.mu.Unlock()
		}
		p.release(j)
	}
}

func (p *putter) release(j putJob) {
	if j.objs != nil {
		*j.data = (*j.data)[:0]
		p.s.frameBufs.Put(j.data)
		return
	}
	if j.data != nil {
		*j.data = (*j.data)[:0]
		p.s.bufs.Put(j.data)
	}
}

func (p *putter) submit(j putJob) error {
	select {
	case p.jobs <- j:
		return nil
	case <-p.ctx.Done():
		p.release(j)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.err != nil {
			return p.err
		}
		return p.ctx.Err()
	}
}

// putFile reads r to EOF, queueing every new chunk (and the chunk list of
// a multi-chunk file). It returns the content hash, the size and, for a
// multi-chunk file, its chunks.
func (p *putter) putFile(r io.Reader) (images.Digest, int64, []Chunk, error) {
	var (
		whole = sha256.New()
		size  int64
		list  []Chunk
		c     = chunks.NewChunker(r)
	)
	defer c.Close()
	for {
		b, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return images.Digest{}, 0, nil, err
		}
		if err := p.ctx.Err(); err != nil {
			return images.Digest{}, 0, nil, p.firstErr(err)
		}
		id := images.Digest(sha256.Sum256(b))
		if len(list) == 0 && c.Done() {
			// The only chunk: the content hash is the chunk's.
			size = int64(len(b))
			if err := p.queueChunk(id, b); err != nil {
				return images.Digest{}, 0, nil, err
			}
			return id, size, nil, nil
		}
		whole.Write(b)
		size += int64(len(b))
		list = append(list, Chunk{ID: id, Size: int64(len(b))})
		if err := p.queueChunk(id, b); err != nil {
			return images.Digest{}, 0, nil, err
		}
	}
	sha := images.Digest(whole.Sum(nil))
	if len(list) < 2 {
		return sha, size, nil, nil
	}
	p.mu.Lock()
	dup := p.seen[sha]
	p.seen[sha] = true
	p.mu.Unlock()
	if !dup {
		if err := p.submit(putJob{h: DigestHandle(KindList, sha), raw: chunks.FormatChunkList(list)}); err != nil {
			return images.Digest{}, 0, nil, err
		}
	}
	return sha, size, list, nil
}

// queueChunk queues chunk b (copied) for writing unless this putter has
// seen it already.
func (p *putter) queueChunk(id images.Digest, b []byte) error {
	p.mu.Lock()
	dup := p.seen[id]
	p.seen[id] = true
	p.mu.Unlock()
	if dup {
		return nil
	}
	if p.packed {
		return p.queuePacked(id, b)
	}
	buf := p.s.bufs.Get().(*[]byte)
	*buf = append((*buf)[:0], b...)
	return p.submit(putJob{h: DigestHandle(KindObject, id), data: buf})
}

// queuePacked adds object b to the frame being gathered, unless a pack
// holds it already; a full frame goes to the workers.
func (p *putter) queuePacked(id images.Digest, b []byte) error {
	if _, ok := p.s.packs.Lookup(id); ok {
		return nil
	}
	p.mu.Lock()
	p.NewChunks++
	p.NewBytes += int64(len(b))
	p.mu.Unlock()
	if p.batch == nil {
		p.batch = p.s.frameBufs.Get().(*[]byte)
	}
	p.batchObjs = append(p.batchObjs, pack.FrameObj{ID: id, Off: uint32(len(*p.batch)), Len: uint32(len(b))})
	*p.batch = append(*p.batch, b...)
	if len(*p.batch) >= pack.FrameTarget || len(p.batchObjs) >= pack.MaxFrameObjs {
		return p.submitBatch()
	}
	return nil
}

func (p *putter) submitBatch() error {
	if p.batch == nil {
		return nil
	}
	j := putJob{data: p.batch, objs: p.batchObjs}
	p.batch, p.batchObjs = nil, nil
	return p.submit(j)
}

func (p *putter) firstErr(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	return err
}

// wait lets the workers finish and returns the first error.
func (p *putter) wait() error {
	if err := p.submitBatch(); err != nil {
		p.fail(err)
	}
	close(p.jobs)
	p.wg.Wait()
	if p.pw != nil && p.ctx.Err() == nil {
		if err := p.pw.Flush(p.ctx); err != nil {
			p.fail(err)
		} else {
			p.wrote = true
		}
	}
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}
