package commit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"sync/atomic"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/beneath"
	"github.com/ingotfleet/ingot/internal/rate"
	"github.com/ingotfleet/ingot/pusher/fetch"
	"golang.org/x/sys/unix"
)

// Stager writes files into the stage directory, which it reaches only
// through its descriptor.
type Stager struct {
	Stage *beneath.Dir
	Write *rate.Limiter // bytes per second written (nil: no limit)
	Hooks Hooks
	// Written counts the bytes of content staged.
	Written atomic.Int64
}

// Exists reports whether the staged file is complete (it was renamed from
// its temporary name only once whole, with attributes applied).
func (s *Stager) Exists(name string) bool { return beneath.Exists(s.Stage.Fd(), name) }

// stagedFile is a staged file being written: content flows through it
// chunk by chunk (the agent never holds a whole file), runs of zeros
// become holes.
type stagedFile struct {
	ctx  context.Context
	f    *os.File
	lim  *rate.Limiter
	hook Hooks
	h    hash.Hash
	n    int64
	last int64 // n at the last crash point
}

var zeroBlock [64 << 10]byte

func allZero(p []byte) bool {
	for len(p) > 0 {
		k := min(len(p), len(zeroBlock))
		if !bytes.Equal(p[:k], zeroBlock[:k]) {
			return false
		}
		p = p[k:]
	}
	return true
}

func (w *stagedFile) Write(p []byte) (int, error) {
	w.h.Write(p)
	if len(p) >= 4096 && allZero(p) {
		if _, err := w.f.Seek(int64(len(p)), io.SeekCurrent); err != nil {
			return 0, err
		}
	} else {
		var out io.Writer = w.f
		if w.lim != nil {
			out = rate.Writer{Ctx: w.ctx, W: w.f, L: w.lim}
		}
		if _, err := out.Write(p); err != nil {
			return 0, err
		}
	}
	w.n += int64(len(p))
	if w.n-w.last >= 1<<20 {
		w.last = w.n
		w.hook.crash("write")
	}
	return len(p), nil
}

func (w *stagedFile) Reset() error {
	w.h.Reset()
	w.n, w.last = 0, 0
	if err := w.f.Truncate(0); err != nil {
		return err
	}
	_, err := w.f.Seek(0, io.SeekStart)
	return err
}

func (w *stagedFile) Sum() (d images.Digest) { w.h.Sum(d[:0]); return d }
func (w *stagedFile) Len() int64             { return w.n }

// StageFile writes the staged file name with e's content and attributes:
// fill writes the content, which is then checked against e's hash and size.
func (s *Stager) StageFile(ctx context.Context, name string, e *images.Entry, fill func(fetch.Sink) error) error {
	tmp := name + ".tmp"
	_ = unix.Unlinkat(s.Stage.Fd(), tmp, 0) // left by an interrupted run, if any
	fd, err := unix.Openat(s.Stage.Fd(), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	f := os.NewFile(uintptr(fd), s.Stage.Abs(tmp))
	fail := func(err error) error {
		// The half-written file is thrown away: the error is err.
		_ = f.Close()
		_ = unix.Unlinkat(s.Stage.Fd(), tmp, 0)
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	w := &stagedFile{ctx: ctx, f: f, lim: s.Write, hook: s.Hooks, h: sha256.New()}
	if err := fill(w); err != nil {
		return fail(err)
	}
	if w.n != e.Size || w.Sum() != e.SHA256 {
		return fail(fmt.Errorf("content is %d bytes with sha256 %s, want %d bytes %s: %w", w.n, w.Sum(), e.Size, e.SHA256, fetch.ErrCorrupt))
	}
	s.Hooks.crash("write")
	// A hole at the end is not written: the size is set.
	if err := f.Truncate(w.n); err != nil {
		return fail(err)
	}
	s.Written.Add(w.n)
	if err := setAttrs(beneath.TargetOf(fd, "staged "+e.Path), e, fresh); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = unix.Unlinkat(s.Stage.Fd(), tmp, 0) // thrown away
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	if err := unix.Renameat(s.Stage.Fd(), tmp, s.Stage.Fd(), name); err != nil {
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	s.Hooks.crash("staged")
	return nil
}

// CopyStaged stages name as a copy of the staged file from (same content).
func (s *Stager) CopyStaged(ctx context.Context, name, from string, e *images.Entry) error {
	return s.StageFile(ctx, name, e, func(w fetch.Sink) error {
		f, err := beneath.OpenRegularAt(s.Stage.Fd(), from, s.Stage.Abs(from))
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyBuffer(w, f, make([]byte, 256<<10))
		return err
	})
}

// StageNode stages a symlink, device, fifo or socket.
func (s *Stager) StageNode(name string, e *images.Entry) error {
	tmp := name + ".tmp"
	dfd := s.Stage.Fd()
	_ = unix.Unlinkat(dfd, tmp, 0) // left by an interrupted run, if any
	var err error
	switch e.Type {
	case images.TypeSymlink:
		err = unix.Symlinkat(e.Link, dfd, tmp)
	case images.TypeChar:
		err = unix.Mknodat(dfd, tmp, unix.S_IFCHR|0o600, int(unix.Mkdev(e.DevMajor, e.DevMinor)))
	case images.TypeBlock:
		err = unix.Mknodat(dfd, tmp, unix.S_IFBLK|0o600, int(unix.Mkdev(e.DevMajor, e.DevMinor)))
	case images.TypeFifo:
		err = unix.Mkfifoat(dfd, tmp, 0o600)
	case images.TypeSocket:
		err = unix.Mknodat(dfd, tmp, unix.S_IFSOCK|0o600, 0)
	default:
		err = fmt.Errorf("cannot stage a %s", e.Type)
	}
	if err != nil {
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	if err := setAttrsAt(dfd, tmp, e, nil, "staged "+e.Path); err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0) // thrown away
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	if err := unix.Renameat(dfd, tmp, dfd, name); err != nil {
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	s.Hooks.crash("staged")
	return nil
}

// fresh stands for what a file the stager just created has: the agent's
// owner, mode 0600, no xattrs.
var fresh = &images.Entry{UID: os.Geteuid(), GID: os.Getegid(), Mode: 0o600}
