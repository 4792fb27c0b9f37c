package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// MarkerFile sits at the root of every store; its content (MarkerV1,
// MarkerV2) names the layout version. A directory without it is not opened as a store unless
// it is empty, so a mistyped --store never scribbles into a random folder.
const (
	MarkerFile = "ingot-store"
	MarkerV1   = "ingot store v1\n"
	MarkerV2   = "ingot store v2\n"
)

// LayoutV1 and LayoutV2 are the store layout versions (docs/store.md):
// v1 keeps every chunk in a file of its own, v2 packs them.
const (
	LayoutV1 = 1
	LayoutV2 = 2
)

// Local is a Backend on a local directory.
type Local struct {
	dir     string
	version atomic.Int32 // LayoutV1 or LayoutV2

	mu   sync.Mutex
	dirs map[string]bool // folders known to exist
}

// OpenLocal opens the store directory dir, creating it (and its layout)
// when it does not exist or is empty.
func OpenLocal(dir string) (*Local, error) {
	b := &Local{dir: dir, dirs: map[string]bool{}}
	marker := filepath.Join(dir, MarkerFile)
	got, err := os.ReadFile(marker)
	switch {
	case err == nil:
		switch string(got) {
		case MarkerV1:
			b.version.Store(LayoutV1)
		case MarkerV2:
			b.version.Store(LayoutV2)
		default:
			return nil, fmt.Errorf("opening store %s: %s says %q, this ingot reads %q and %q", dir, MarkerFile, strings.TrimSpace(string(got)), strings.TrimSpace(MarkerV1), strings.TrimSpace(MarkerV2))
		}
	case errors.Is(err, fs.ErrNotExist):
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("opening store %s: %w", dir, err)
		}
		if len(ents) > 0 {
			return nil, fmt.Errorf("opening store %s: not empty and not an ingot store (no %s file)", dir, MarkerFile)
		}
		if err := b.init(); err != nil {
			return nil, fmt.Errorf("creating store %s: %w", dir, err)
		}
	default:
		return nil, fmt.Errorf("opening store %s: %w", dir, err)
	}
	return b, nil
}

func (b *Local) init() error {
	for _, k := range Kinds {
		if err := os.MkdirAll(filepath.Join(b.dir, k.String()), 0o755); err != nil {
			return err
		}
	}
	b.version.Store(LayoutV2)
	return writeFileAtomic(b.dir, filepath.Join(b.dir, MarkerFile), []byte(MarkerV2), true)
}

// LayoutVersion is the store's layout version (LayoutV1 or LayoutV2).
func (b *Local) LayoutVersion() int { return int(b.version.Load()) }

// SetLayoutVersion rewrites the marker durably: the commit point of a
// migration.
func (b *Local) SetLayoutVersion(v int) error {
	content := MarkerV1
	if v == LayoutV2 {
		content = MarkerV2
	}
	if err := writeFileAtomic(b.dir, filepath.Join(b.dir, MarkerFile), []byte(content), true); err != nil {
		return fmt.Errorf("writing %s: %w", MarkerFile, err)
	}
	b.version.Store(int32(v))
	return nil
}

// Location is the store directory.
func (b *Local) Location() string { return b.dir }

func (b *Local) path(h Handle) (string, error) {
	if err := h.Valid(); err != nil {
		return "", err
	}
	return filepath.Join(b.dir, filepath.FromSlash(h.Path())), nil
}

// open opens the file of h for reading, refusing anything but a regular
// file. Non-blocking: a FIFO planted in the store directory must not hang
// the reader at open; it is refused as not a regular file.
func (b *Local) open(h Handle) (*os.File, fs.FileInfo, string, error) {
	p, err := b.path(h)
	if err != nil {
		return nil, nil, "", err
	}
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, p, fmt.Errorf("%s in %s: %w", h, b.dir, ErrNotFound)
	}
	if err != nil {
		return nil, nil, p, fmt.Errorf("reading %s: %w", p, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file: %w", ErrCorrupt)
	}
	if err != nil {
		f.Close()
		return nil, nil, p, fmt.Errorf("reading %s: %w", p, err)
	}
	return f, fi, p, nil
}

// Get reads the file of h, at most max bytes.
func (b *Local) Get(ctx context.Context, h Handle, max int64) ([]byte, error) {
	f, fi, p, err := b.open(h)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > max {
		return nil, TooLarge(h, b.dir, fmt.Sprintf("%d bytes,", fi.Size()), max)
	}
	data := make([]byte, 0, fi.Size()+1)
	for {
		n, err := f.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if int64(len(data)) > max {
			return nil, TooLarge(h, b.dir, "grew to", max)
		}
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
}

// GetRange reads n bytes of the file of h from off.
func (b *Local) GetRange(ctx context.Context, h Handle, off, n int64) ([]byte, error) {
	if off < 0 || n <= 0 {
		return nil, fmt.Errorf("%s in %s: range of %d bytes at %d: %w", h, b.dir, n, off, ErrCorrupt)
	}
	f, fi, p, err := b.open(h)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if off > fi.Size() || n > fi.Size()-off {
		return nil, fmt.Errorf("%s in %s: bytes %d-%d asked, the file has %d: %w", h, b.dir, off, off+n-1, fi.Size(), ErrCorrupt)
	}
	data := make([]byte, n)
	if _, err := f.ReadAt(data, off); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("%s in %s: shrank while read: %w", h, b.dir, ErrCorrupt)
		}
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	return data, nil
}

// Has reports whether the file of h exists.
func (b *Local) Has(ctx context.Context, h Handle) (bool, error) {
	p, err := b.path(h)
	if err != nil {
		return false, err
	}
	_, err = os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking %s: %w", p, err)
	}
	return true, nil
}

// Put writes data to the file of h: temp file in the store's tmp folder,
// fsync (if durable), rename into place, fsync of the folder (if durable).
func (b *Local) Put(ctx context.Context, h Handle, data []byte, durable bool) error {
	p, err := b.path(h)
	if err != nil {
		return err
	}
	if err := b.mkdir(filepath.Dir(p), durable); err != nil {
		return err
	}
	err = writeFileAtomic(filepath.Dir(p), p, data, durable)
	if errors.Is(err, fs.ErrNotExist) && h.Kind == KindRef {
		// A concurrent Delete removed the ref's name folder: make it again.
		b.mu.Lock()
		delete(b.dirs, filepath.Dir(p))
		b.mu.Unlock()
		if err = b.mkdir(filepath.Dir(p), durable); err == nil {
			err = writeFileAtomic(filepath.Dir(p), p, data, durable)
		}
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", h, err)
	}
	return nil
}

func (b *Local) mkdir(d string, durable bool) error {
	b.mu.Lock()
	ok := b.dirs[d]
	b.mu.Unlock()
	if ok {
		return nil
	}
	if _, err := os.Stat(d); err != nil {
		// MkdirAll: a store made before a kind existed lacks its folder.
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
		if durable {
			if err := syncDir(filepath.Dir(d)); err != nil {
				return err
			}
		}
	}
	b.mu.Lock()
	b.dirs[d] = true
	b.mu.Unlock()
	return nil
}

// umaskHidesRead reports whether the process umask takes away the read
// bits of 0644 (then every new file needs a chmod). It reads the umask
// from /proc once, without the race of setting it to learn it; when it
// cannot tell, it says yes.
var umaskHidesRead = sync.OnceValue(func() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			return err != nil || m&0o644 != 0
		}
	}
	return true
})

// tmpSeq numbers temp files; with the pid it makes their names unique.
var tmpSeq atomic.Uint64

// writeFileAtomic writes data to dst through a temp file in dir (on the
// same filesystem), so dst appears whole or not at all. It calls the
// system directly: on an import of thousands of objects the os.File
// machinery (non-blocking mode, poller registration) costs more than the
// write itself.
func writeFileAtomic(dir, dst string, data []byte, durable bool) error {
	tmp := filepath.Join(dir, fmt.Sprintf(".tmp-%d-%d", os.Getpid(), tmpSeq.Add(1)))
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "create", Path: tmp, Err: err}
	}
	fail := func(op string, err error) error {
		// The error reported is op's; the temp file goes either way.
		_ = unix.Close(fd)
		_ = unix.Unlink(tmp)
		return &os.PathError{Op: op, Path: tmp, Err: err}
	}
	for b := data; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fail("write", err)
		}
		b = b[n:]
	}
	// The umask may have taken bits a static HTTP server needs.
	if umaskHidesRead() {
		if err := unix.Fchmod(fd, 0o644); err != nil {
			return fail("chmod", err)
		}
	}
	if durable {
		if err := unix.Fsync(fd); err != nil {
			return fail("fsync", err)
		}
	}
	if err := unix.Close(fd); err != nil {
		_ = unix.Unlink(tmp) // the close error is the one reported
		return &os.PathError{Op: "close", Path: tmp, Err: err}
	}
	if err := unix.Rename(tmp, dst); err != nil {
		_ = unix.Unlink(tmp) // the rename error is the one reported
		return &os.LinkError{Op: "rename", Old: tmp, New: dst, Err: err}
	}
	if durable {
		return syncDir(filepath.Dir(dst))
	}
	return nil
}

func syncDir(d string) error {
	f, err := os.Open(d)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", d, err)
	}
	return nil
}

// Delete removes the file of h.
func (b *Local) Delete(ctx context.Context, h Handle) error {
	p, err := b.path(h)
	if err != nil {
		return err
	}
	if err := os.Remove(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("deleting %s: %w", h, err)
	}
	d := filepath.Dir(p)
	if h.Kind == KindRef {
		// Leave no empty name folder behind; fails harmlessly when not empty.
		if os.Remove(d) == nil {
			b.mu.Lock()
			delete(b.dirs, d)
			b.mu.Unlock()
			d = filepath.Dir(d)
		}
	}
	return syncDir(d)
}

// List calls fn for every file of kind k.
func (b *Local) List(ctx context.Context, k Kind, fn func(string) error) error {
	root := filepath.Join(b.dir, k.String())
	top, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) && k >= KindSignature {
		return nil // a store made before this kind existed
	}
	if err != nil {
		return fmt.Errorf("listing %s: %w", root, err)
	}
	for _, d := range top {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch k {
		case KindImage, KindSignature, KindPack, KindPackIndex, KindImagePacks:
			if hexName.MatchString(d.Name()) {
				if err := fn(d.Name()); err != nil {
					return err
				}
			}
			continue
		}
		if !d.IsDir() {
			continue
		}
		sub, err := os.ReadDir(filepath.Join(root, d.Name()))
		if err != nil {
			return fmt.Errorf("listing %s: %w", root, err)
		}
		for _, f := range sub {
			name := f.Name()
			if k == KindRef || k == KindDelta {
				name = d.Name() + "/" + name
			}
			if (Handle{Kind: k, Name: name}).Valid() != nil {
				continue // temp or stray files
			}
			if err := fn(name); err != nil {
				return err
			}
		}
	}
	return nil
}

// Sync flushes the store's filesystem (syncfs): after a bulk import written
// without per-object fsync, one call makes all of it durable.
func (b *Local) Sync(ctx context.Context) error {
	f, err := os.Open(b.dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncing store %s: %w", b.dir, err)
	}
	return nil
}
