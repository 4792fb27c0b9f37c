package debrepo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/sourcegraph/conc/pool"

	"github.com/ingotfleet/ingot/builder/spec"
	"github.com/ingotfleet/ingot/internal/atomicfile"
)

// Item is a file to download into a Cache: where from, and the size and
// sha256 it must have.
type Item struct {
	Name   string // for messages and progress, such as "coreutils_9.1-1_amd64.deb"
	URL    string
	Size   int64
	SHA256 string
}

// ItemsFromLock lists the .deb files of a lock as download items.
func ItemsFromLock(l *spec.Lock) []Item {
	items := make([]Item, len(l.Packages))
	for i, p := range l.Packages {
		items[i] = Item{Name: filepath.Base(p.Filename), URL: l.URL(p), Size: p.Size, SHA256: p.SHA256}
	}
	return items
}

// errRetry asks fetchOne to try again at once (another process finished
// or dropped the partial file we waited for).
var errRetry = errors.New("retry")

// Event reports download progress. Cache.Fetch serialises its calls.
type Event struct {
	Item   Item
	Bytes  int64 // bytes received since the last event for this item
	Cached bool  // the item was already in the cache (Done is set too)
	Done   bool  // the item is complete and verified
}

// Cache is a content-addressed directory of downloaded files: each file is
// stored under its sha256 and enters the cache only after its size and
// hash were checked, so a file in the cache is always whole and right.
// Interrupted downloads stay in partial/ and resume where they stopped.
type Cache struct {
	Dir      string
	Client   *Client // nil: a default Client
	Parallel int     // concurrent downloads; 0 means 8
	Retries  int     // attempts per file after the first; 0 means 2
}

// Path is where the file with the given sha256 lives in the cache.
func (c *Cache) Path(sha string) string {
	return filepath.Join(c.Dir, "sha256", sha[:2], sha)
}

// Has reports whether the cache holds a file with this hash and size.
func (c *Cache) Has(sha string, size int64) bool {
	fi, err := os.Stat(c.Path(sha))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == size
}

// Fetch makes sure every item is in the cache, downloading what is
// missing in parallel, and returns their cache paths in the order of
// items. A file that does not match its size or sha256 is deleted and
// reported with its URL (errors.Is ErrHashMismatch). progress may be nil.
func (c *Cache) Fetch(ctx context.Context, items []Item, progress func(Event)) ([]string, error) {
	for _, it := range items {
		if b, err := hex.DecodeString(it.SHA256); err != nil || len(b) != 32 {
			return nil, fmt.Errorf("%s: %q is not a sha256", it.URL, it.SHA256)
		}
	}
	var mu sync.Mutex
	report := func(e Event) {
		if progress != nil {
			mu.Lock()
			progress(e)
			mu.Unlock()
		}
	}
	paths := make([]string, len(items))
	errs := make([]error, len(items))
	par := c.Parallel
	if par <= 0 {
		par = 8
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := pool.New().WithMaxGoroutines(par) // a panic in a fetch is raised here
	for i, it := range items {
		paths[i] = c.Path(it.SHA256)
		if c.Has(it.SHA256, it.Size) {
			report(Event{Item: it, Cached: true, Done: true})
			continue
		}
		if err := ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		p.Go(func() {
			if err := ctx.Err(); err != nil {
				errs[i] = err
				return
			}
			if err := c.fetchOne(ctx, it, report); err != nil {
				errs[i] = err
				cancel()
			}
		})
	}
	p.Wait()
	var out []error
	for _, e := range errs {
		if e != nil && !errors.Is(e, context.Canceled) {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		for _, e := range errs {
			if e != nil {
				out = append(out, e)
				break
			}
		}
	}
	if err := errors.Join(out...); err != nil {
		return nil, err
	}
	return paths, nil
}

func (c *Cache) fetchOne(ctx context.Context, it Item, report func(Event)) error {
	// Two items may share a hash (the same .deb in two suites); the second
	// finds the first's file.
	if c.Has(it.SHA256, it.Size) {
		report(Event{Item: it, Cached: true, Done: true})
		return nil
	}
	retries := c.Retries
	if retries <= 0 {
		retries = 2
	}
	var err error
	for attempt := 0; attempt <= retries; attempt++ {
		err = c.download(ctx, it, report)
		if errors.Is(err, errRetry) {
			attempt--
			continue
		}
		if err == nil || errors.Is(err, ErrHashMismatch) || errors.Is(err, ErrNotFound) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// download fetches one item into partial/, resuming what an earlier try
// left, verifies it, and renames it into place. This is atomicfile's
// write (sync, rename, sync the directory) with two things atomicfile.File
// does not do: the partial file is kept and resumed across attempts, and
// it is locked so two processes fetch it once.
func (c *Cache) download(ctx context.Context, it Item, report func(Event)) error {
	partDir := filepath.Join(c.Dir, "partial")
	if err := os.MkdirAll(partDir, 0o755); err != nil {
		return fmt.Errorf("download cache: %w", err)
	}
	part := filepath.Join(partDir, it.SHA256+".part")
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("download cache: %w", err)
	}
	defer func() { _ = f.Close() }() // closed and checked below; this is for the error paths
	// Another process may be downloading the same file: wait for it, and
	// take its result if it finished.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("download cache: locking %s: %w", part, err)
	}
	if c.Has(it.SHA256, it.Size) {
		report(Event{Item: it, Cached: true, Done: true})
		return nil
	}
	if fi, err := f.Stat(); err != nil {
		return fmt.Errorf("download cache: %w", err)
	} else if st, err := os.Stat(part); err != nil || !os.SameFile(fi, st) {
		// The file we locked was renamed into the cache or removed by
		// the process that held the lock: start again.
		return errRetry
	}
	h := sha256.New()
	have, err := io.Copy(h, f) // rehash what an earlier attempt left
	if err != nil {
		return fmt.Errorf("download cache: reading %s: %w", part, err)
	}
	if have > it.Size {
		have = 0
	}
	client := c.Client
	if client == nil {
		client = &Client{}
	}
	var body io.ReadCloser
	resumed := false
	if have > 0 && have < it.Size {
		body, resumed, _, err = client.open(ctx, it.URL, have)
	} else if have < it.Size || have == 0 {
		body, _, _, err = client.open(ctx, it.URL, 0)
	}
	if err != nil {
		return err
	}
	if body != nil {
		defer body.Close()
		if !resumed {
			if err := f.Truncate(0); err != nil {
				return fmt.Errorf("download cache: %w", err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("download cache: %w", err)
			}
			h.Reset()
			have = 0
		} else {
			report(Event{Item: it, Bytes: have})
		}
		if err := copyProgress(ctx, io.MultiWriter(f, h), io.LimitReader(body, it.Size-have+1), it, report, &have); err != nil {
			return fmt.Errorf("fetching %s: %w", it.URL, err)
		}
	}
	if have != it.Size {
		_ = os.Remove(part) // bad bytes: the next try starts over either way
		return fmt.Errorf("%s: %w: size %d, want %d", it.URL, ErrHashMismatch, have, it.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != it.SHA256 {
		_ = os.Remove(part) // bad bytes: the next try starts over either way
		return fmt.Errorf("%s: %w: sha256 %s, want %s", it.URL, ErrHashMismatch, got, it.SHA256)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("download cache: %w", err)
	}
	// Rename while the lock is still held: a process waiting on this part
	// file then finds the file in the cache. Closing first would let it
	// rename the same part path too, after a third process had created a
	// new, empty one there — and that empty file would replace the good one.
	dst := c.Path(it.SHA256)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("download cache: %w", err)
	}
	if err := os.Rename(part, dst); err != nil {
		return fmt.Errorf("download cache: %w", err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("download cache: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("download cache: %w", err)
	}
	report(Event{Item: it, Done: true})
	return nil
}

func copyProgress(ctx context.Context, w io.Writer, r io.Reader, it Item, report func(Event), have *int64) error {
	buf := make([]byte, 256<<10)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			*have += int64(n)
			report(Event{Item: it, Bytes: int64(n)})
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
