package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/pack"
)

// Problem is one integrity failure found by Verify.
type Problem struct {
	What string // the stored file or image entry concerned
	Err  error
}

func (p Problem) String() string { return p.What + ": " + p.Err.Error() }

// Progress reports how far a long operation has got.
type Progress struct {
	Phase string // "objects", "lists", "images", "refs", "files"
	Done  int
	Total int
}

// ProgressFunc receives progress; it must return quickly.
type ProgressFunc func(Progress)

// Verify checks the integrity of the whole store: every object against its
// name, every chunk list by putting its file together, every image index
// and manifest, and every ref. It returns what is wrong; the error is for
// trouble that stopped the check (I/O, cancellation).
func (s *Store) Verify(ctx context.Context, progress ProgressFunc) ([]Problem, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	var probs problems
	names := map[Kind][]string{}
	for _, k := range Kinds {
		err := s.b.List(ctx, k, func(n string) error { names[k] = append(names[k], n); return nil })
		if err != nil {
			return nil, fmt.Errorf("verifying %s: %w", s.b.Location(), err)
		}
		slices.Sort(names[k])
	}
	err := s.parallel(ctx, "objects", names[KindObject], progress, func(n string) {
		d, _ := images.ParseDigest(n)
		if _, err := s.getObject(ctx, d, MaxManifest); err != nil {
			probs.add(DigestHandle(KindObject, d).Path(), err)
		}
	})
	if err != nil {
		return nil, err
	}
	err = s.parallel(ctx, "packs", names[KindPackIndex], progress, func(n string) {
		d, _ := images.ParseDigest(n)
		for _, p := range s.checkPack(ctx, d) {
			probs.add(p.What, p.Err)
		}
	})
	if err != nil {
		return nil, err
	}
	err = s.parallel(ctx, "lists", names[KindList], progress, func(n string) {
		d, _ := images.ParseDigest(n)
		if err := s.checkContent(ctx, d, -1); err != nil {
			probs.add(DigestHandle(KindList, d).Path(), err)
		}
	})
	if err != nil {
		return nil, err
	}
	err = s.parallel(ctx, "images", names[KindImage], progress, func(n string) {
		d, _ := images.ParseDigest(n)
		for _, p := range s.checkImage(ctx, d, false) {
			probs.add(p.What, p.Err)
		}
	})
	if err != nil {
		return nil, err
	}
	err = s.parallel(ctx, "deltas", names[KindDelta], progress, func(n string) {
		if err := s.verifyDelta(ctx, n); err != nil {
			probs.add("deltas/"+n, err)
		}
	})
	if err != nil {
		return nil, err
	}
	err = s.parallel(ctx, "refs", names[KindRef], progress, func(n string) {
		ref := strings.Replace(n, "/", ":", 1)
		d, err := s.Ref(ctx, ref)
		if err == nil {
			var ok bool
			ok, err = s.b.Has(ctx, DigestHandle(KindImage, d))
			if err == nil && !ok {
				err = fmt.Errorf("points at image %s, which is not in the store: %w", d, ErrNotFound)
			}
		}
		if err != nil {
			probs.add("refs/"+n, err)
		}
	})
	if err != nil {
		return nil, err
	}
	return probs.sorted(), ctx.Err()
}

// checkPack checks the pack p against its index: every object read from
// it and checked against its name.
func (s *Store) checkPack(ctx context.Context, p images.Digest) []Problem {
	h := DigestHandle(KindPackIndex, p)
	data, err := s.b.Get(ctx, h, pack.MaxIndex)
	if err != nil {
		return []Problem{{h.Path(), err}}
	}
	packs, ids, locs, err := pack.ParseIndex(h.Path()+" from "+s.b.Location(), data)
	if err == nil && (len(packs) != 1 || packs[0] != p) {
		err = fmt.Errorf("names other packs than %s: %w", p, ErrCorrupt)
	}
	if err != nil {
		return []Problem{{h.Path(), err}}
	}
	s.packs.Add(packs, ids, locs)
	var probs []Problem
	for i, id := range ids {
		l := locs[i]
		l.Pack = s.packs.Number(p)
		if _, err := s.packs.Read(ctx, id, l, MaxChunk); err != nil {
			probs = append(probs, Problem{DigestHandle(KindPack, p).Path() + ": object " + id.String(), err})
		}
	}
	return probs
}

// VerifyImage checks one image: its manifest and index, and the content
// of every regular file (each chunk against its name, each file against
// its hash and size).
func (s *Store) VerifyImage(ctx context.Context, d images.Digest, progress ProgressFunc) ([]Problem, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	var probs problems
	for _, p := range s.checkImage(ctx, d, true) {
		probs.add(p.What, p.Err)
	}
	m, err := s.Manifest(ctx, d)
	if err != nil {
		return probs.sorted(), ctx.Err()
	}
	type file struct {
		sha  images.Digest
		size int64
		path string
	}
	seen := map[images.Digest]bool{}
	var files []file
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Type == images.TypeFile && !seen[e.SHA256] {
			seen[e.SHA256] = true
			files = append(files, file{e.SHA256, e.Size, e.Path})
		}
	}
	byName := map[string]file{}
	var names []string
	for _, f := range files {
		byName[f.sha.String()] = f
		names = append(names, f.sha.String())
	}
	err = s.parallel(ctx, "files", names, progress, func(n string) {
		f := byName[n]
		if err := s.checkContent(ctx, f.sha, f.size); err != nil {
			probs.add(images.Escape(f.path), err)
		}
	})
	if err != nil {
		return nil, err
	}
	return probs.sorted(), ctx.Err()
}

// checkImage checks an image's manifest and index agree: the index is
// well formed, lists only files of the manifest, with chunk sizes adding up
// to the file's size. deep: also that every file's content is present.
func (s *Store) checkImage(ctx context.Context, d images.Digest, deep bool) []Problem {
	var out []Problem
	where := "image " + d.String()
	m, err := s.Manifest(ctx, d)
	if err != nil {
		return append(out, Problem{where, err})
	}
	ix, err := s.IndexOf(ctx, d, IndexLimit(m))
	if err != nil {
		return append(out, Problem{where, err})
	}
	sizes := map[images.Digest]int64{}
	for i := range m.Entries {
		if e := &m.Entries[i]; e.Type == images.TypeFile {
			sizes[e.SHA256] = e.Size
		}
	}
	for f, cs := range ix {
		size, ok := sizes[f]
		if !ok {
			out = append(out, Problem{where, fmt.Errorf("index lists content %s, which no file of the manifest has: %w", f, ErrCorrupt)})
			continue
		}
		var sum int64
		for _, c := range cs {
			sum += c.Size
		}
		if sum != size {
			out = append(out, Problem{where, fmt.Errorf("index lists %d bytes of chunks for content %s, the manifest says %d: %w", sum, f, size, ErrCorrupt)})
		}
	}
	return out
}

// checkContent reads a file's content back through its chunks and checks
// hash and (if size ≥ 0) size.
func (s *Store) checkContent(ctx context.Context, sha images.Digest, size int64) error {
	r, err := s.OpenFile(ctx, sha)
	if err != nil {
		return err
	}
	defer r.Close()
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return err
	}
	if size >= 0 && n != size {
		return fmt.Errorf("content %s is %d bytes, the manifest says %d: %w", sha, n, size, ErrCorrupt)
	}
	return nil
}

// parallel runs fn for each name on the store's workers, reporting progress.
func (s *Store) parallel(ctx context.Context, phase string, names []string, progress ProgressFunc, fn func(string)) error {
	var (
		mu   sync.Mutex
		done int
		wg   sync.WaitGroup
		next = make(chan string)
	)
	progress(Progress{Phase: phase, Total: len(names)})
	for range s.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range next {
				fn(n)
				mu.Lock()
				done++
				progress(Progress{Phase: phase, Done: done, Total: len(names)})
				mu.Unlock()
			}
		}()
	}
	var err error
	for _, n := range names {
		if err = ctx.Err(); err != nil {
			break
		}
		next <- n
	}
	close(next)
	wg.Wait()
	return err
}

type problems struct {
	mu   sync.Mutex
	list []Problem
}

func (p *problems) add(what string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	p.mu.Lock()
	p.list = append(p.list, Problem{What: what, Err: err})
	p.mu.Unlock()
}

func (p *problems) sorted() []Problem {
	slices.SortStableFunc(p.list, func(a, b Problem) int { return strings.Compare(a.What, b.What) })
	return p.list
}
