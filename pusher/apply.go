package pusher

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/beneath"
)

// Journal is written, complete and synced, before a commit's first
// rename. While it exists the commit is unfinished; recovery runs its ops
// again (each op is idempotent), which can only end at the new image.
type Journal struct {
	From       images.Digest `json:"from"`
	To         images.Digest `json:"to"`
	Generation int           `json:"generation"`
	Stage      string        `json:"stage"`  // directory of staged files
	Backup     string        `json:"backup"` // directory of what the commit replaced
	Ops        []Op          `json:"ops"`
	// Changed is what after-phase triggers match against; recovery runs
	// them when a crash came before they did.
	Changed []string `json:"changed,omitempty"`
}

// CrashHook, when set, is called at every step of staging and commit with
// a step name; tests use it to kill the process at an exact point.
var CrashHook func(step string)

func crashPoint(step string) {
	if CrashHook != nil {
		CrashHook(step)
	}
}

// stager writes files into the stage directory, which it reaches only
// through its descriptor.
type stager struct {
	stage   *beneath.Dir
	write   *Limiter
	written atomic.Int64
}

// exists reports whether the staged file is complete (it was renamed from
// its temporary name only once whole, with attributes applied).
func (s *stager) exists(name string) bool { return beneath.Exists(s.stage.Fd(), name) }

// sink receives a file's content: its bytes go through a running sha256.
// Reset drops what was written, so a caller can try another source.
type sink interface {
	io.Writer
	Reset() error
	Sum() images.Digest
	Len() int64
}

// stagedFile is a staged file being written: content flows through it
// chunk by chunk (the agent never holds a whole file), runs of zeros
// become holes.
type stagedFile struct {
	ctx  context.Context
	f    *os.File
	lim  *Limiter
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
			out = limitedWriter{Ctx: w.ctx, W: w.f, L: w.lim}
		}
		if _, err := out.Write(p); err != nil {
			return 0, err
		}
	}
	w.n += int64(len(p))
	if w.n-w.last >= 1<<20 {
		w.last = w.n
		crashPoint("write")
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

// memSink holds a small file's content in memory (trigger rules), up to max bytes.
type memSink struct {
	buf bytes.Buffer
	max int64
}

func (m *memSink) Write(p []byte) (int, error) {
	if int64(m.buf.Len()+len(p)) > m.max {
		return 0, fmt.Errorf("content larger than %d bytes", m.max)
	}
	return m.buf.Write(p)
}
func (m *memSink) Reset() error       { m.buf.Reset(); return nil }
func (m *memSink) Sum() images.Digest { return images.Sum(m.buf.Bytes()) }
func (m *memSink) Len() int64         { return int64(m.buf.Len()) }

// stageFile writes the staged file name with e's content and attributes:
// fill writes the content, which is then checked against e's hash and size.
func (s *stager) stageFile(ctx context.Context, name string, e *images.Entry, fill func(sink) error) error {
	tmp := name + ".tmp"
	_ = unix.Unlinkat(s.stage.Fd(), tmp, 0) // left by an interrupted run, if any
	fd, err := unix.Openat(s.stage.Fd(), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	f := os.NewFile(uintptr(fd), s.stage.Abs(tmp))
	fail := func(err error) error {
		// The half-written file is thrown away: the error is err.
		_ = f.Close()
		_ = unix.Unlinkat(s.stage.Fd(), tmp, 0)
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	w := &stagedFile{ctx: ctx, f: f, lim: s.write, h: sha256.New()}
	if err := fill(w); err != nil {
		return fail(err)
	}
	if w.n != e.Size || w.Sum() != e.SHA256 {
		return fail(fmt.Errorf("content is %d bytes with sha256 %s, want %d bytes %s: %w", w.n, w.Sum(), e.Size, e.SHA256, ErrCorrupt))
	}
	crashPoint("write")
	// A hole at the end is not written: the size is set.
	if err := f.Truncate(w.n); err != nil {
		return fail(err)
	}
	s.written.Add(w.n)
	if err := setAttrs(beneath.TargetOf(fd, "staged "+e.Path), e, fresh); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = unix.Unlinkat(s.stage.Fd(), tmp, 0) // thrown away
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	if err := unix.Renameat(s.stage.Fd(), tmp, s.stage.Fd(), name); err != nil {
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	crashPoint("staged")
	return nil
}

// copyStaged stages name as a copy of the staged file from (same content).
func (s *stager) copyStaged(ctx context.Context, name, from string, e *images.Entry) error {
	return s.stageFile(ctx, name, e, func(w sink) error {
		f, err := beneath.OpenRegularAt(s.stage.Fd(), from, s.stage.Abs(from))
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyBuffer(w, f, make([]byte, 256<<10))
		return err
	})
}

// stageNode stages a symlink, device, fifo or socket.
func (s *stager) stageNode(name string, e *images.Entry) error {
	tmp := name + ".tmp"
	dfd := s.stage.Fd()
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
	crashPoint("staged")
	return nil
}

// fresh stands for what a file the stager just created has: the agent's
// owner, mode 0600, no xattrs.
var fresh = &images.Entry{UID: os.Geteuid(), GID: os.Getegid(), Mode: 0o600}

// RaceHook, when set (tests only), is called just before the agent
// touches a host path: step is an op's kind in a commit, or "hash" when
// the scan reads a file. A test playing a local user makes its swap
// there, at the worst moment.
var RaceHook func(step, path string)

// committer runs a journal's ops against a root. Every op resolves its
// path beneath the root's descriptor without following symlinks, and
// works with *at calls on the parent's descriptor: a parent swapped for a
// symlink at any moment makes the op fail, never act elsewhere.
type committer struct {
	root   *beneath.Dir
	stage  *beneath.Dir
	backup *beneath.Dir
	j      *Journal
}

// openCommitter opens the root, stage and backup directories of j.
func openCommitter(root string, j *Journal) (*committer, error) {
	c := &committer{j: j}
	var err error
	if c.root, err = beneath.Open(root); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(j.Stage, 0o700); err != nil {
		c.Close()
		return nil, err
	}
	if c.stage, err = beneath.Open(j.Stage); err != nil {
		c.Close()
		return nil, err
	}
	if err := os.MkdirAll(j.Backup, 0o700); err != nil {
		c.Close()
		return nil, err
	}
	if c.backup, err = beneath.Open(j.Backup); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *committer) Close() {
	c.root.Close()
	c.stage.Close()
	c.backup.Close()
}

// moveAside moves name (in dirfd) into the backup directory, once.
func (c *committer) moveAside(dirfd int, name, backup, what string) error {
	if !beneath.Exists(dirfd, name) {
		return nil
	}
	if beneath.Exists(c.backup.Fd(), backup) {
		// An earlier run moved the old one aside already; what is there
		// now is not the old version, and not ours: set it aside too.
		for k := 1; ; k++ {
			extra := fmt.Sprintf("%s.%d", backup, k)
			if beneath.Exists(c.backup.Fd(), extra) {
				continue
			}
			if err := unix.Renameat(dirfd, name, c.backup.Fd(), extra); err != nil {
				return fmt.Errorf("commit: moving %s aside: %w", what, err)
			}
			return nil
		}
	}
	if err := unix.Renameat(dirfd, name, c.backup.Fd(), backup); err != nil {
		return fmt.Errorf("commit: moving %s aside: %w", what, err)
	}
	crashPoint("aside")
	return nil
}

func (c *committer) run(op *Op) error {
	if RaceHook != nil {
		RaceHook(string(op.Kind), op.Path)
	}
	pfd, name, err := c.root.Parent(op.Path)
	if err != nil {
		if op.Kind == OpRemove && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR)) {
			// Its parent is gone or was replaced by a non-directory: the
			// path is gone already.
			return nil
		}
		return fmt.Errorf("commit: parent of %s: %w", op.Path, err)
	}
	defer unix.Close(pfd)
	switch op.Kind {
	case OpMkdir:
		if st, err := beneath.Lstat(pfd, name); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return nil
		}
		if err := c.moveAside(pfd, name, op.Backup, op.Path); err != nil {
			return err
		}
		if err := unix.Mkdirat(pfd, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("commit: mkdir %s: %w", op.Path, err)
		}
	case OpPut:
		if !beneath.Exists(c.stage.Fd(), op.Stage) {
			if beneath.Exists(pfd, name) {
				return nil // done by an earlier run
			}
			return fmt.Errorf("commit: staged file for %s is missing", op.Path)
		}
		if err := c.moveAside(pfd, name, op.Backup, op.Path); err != nil {
			return err
		}
		if err := unix.Renameat(c.stage.Fd(), op.Stage, pfd, name); err != nil {
			return fmt.Errorf("commit: putting %s in place: %w", op.Path, err)
		}
	case OpLink:
		if done, err := c.link(pfd, name, op); err != nil || done {
			return err
		}
	case OpRemove:
		if done, err := c.remove(pfd, name, op); err != nil || done {
			return err
		}
	case OpAttrs:
		if err := setAttrsAt(pfd, name, op.Entry, op.Old, op.Path); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	default:
		return fmt.Errorf("commit: unknown op %q", op.Kind)
	}
	crashPoint("op")
	return nil
}

// link makes op.Path a hard link to op.Entry.Link, through the stage;
// done reports that it already was one (nothing to do).
func (c *committer) link(pfd int, name string, op *Op) (done bool, err error) {
	sfd, sname, err := c.root.Parent(op.Entry.Link)
	if err != nil {
		return false, fmt.Errorf("commit: hardlink target %s of %s: %w", op.Entry.Link, op.Path, err)
	}
	defer unix.Close(sfd)
	// The descriptor of the target is what gets linked: checked to be
	// a regular file, it cannot be swapped between check and link.
	src, err := beneath.OpenTarget(sfd, sname, images.IFMT(images.TypeFile), images.TypeFile.String(), op.Entry.Link)
	if err != nil {
		return false, fmt.Errorf("commit: hardlink target of %s: %w", op.Path, err)
	}
	defer src.Close()
	var s1 unix.Stat_t
	if err := unix.Fstat(src.Fd(), &s1); err != nil {
		return false, fmt.Errorf("commit: hardlink target of %s: %w", op.Path, err)
	}
	if s2, err := beneath.Lstat(pfd, name); err == nil && s1.Ino == s2.Ino && s1.Dev == s2.Dev {
		return true, nil
	}
	_ = unix.Unlinkat(c.stage.Fd(), op.Stage, 0) // an earlier run's link, if any
	if err := unix.Linkat(src.Fd(), "", c.stage.Fd(), op.Stage, unix.AT_EMPTY_PATH); err != nil {
		return false, fmt.Errorf("commit: linking %s: %w", op.Path, err)
	}
	if err := c.moveAside(pfd, name, op.Backup, op.Path); err != nil {
		return false, err
	}
	if err := unix.Renameat(c.stage.Fd(), op.Stage, pfd, name); err != nil {
		return false, fmt.Errorf("commit: linking %s: %w", op.Path, err)
	}
	return false, nil
}

// remove moves op.Path aside (into the backup); a directory is removed
// only when empty. done reports that nothing was left to do.
func (c *committer) remove(pfd int, name string, op *Op) (done bool, err error) {
	st, err := beneath.Lstat(pfd, name)
	if err != nil {
		return true, nil // gone already
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		// A directory that still holds local or unmanaged paths, or
		// is a mount point, stays.
		if err := unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.EEXIST) {
			return false, fmt.Errorf("commit: removing %s: %w", op.Path, err)
		}
		return true, nil
	}
	if err := c.moveAside(pfd, name, op.Backup, op.Path); err != nil {
		return false, err
	}
	return false, nil
}

// runJournal runs every op of j against root. When an op fails, the ops
// done so far are undone (see undo) and the error is returned: the root is
// back at the old image. Only when the undo fails too is the root left
// between images, with the journal kept for the next attempt.
func runJournal(ctx context.Context, root string, j *Journal) error {
	c, err := openCommitter(root, j)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	defer c.Close()
	// A commit is not interrupted by cancellation: stopping halfway
	// would only force recovery to finish it later.
	_ = ctx
	for i := range j.Ops {
		if err := c.run(&j.Ops[i]); err != nil {
			if uerr := c.undo(i); uerr != nil {
				return &CommitError{Err: err, Undo: uerr}
			}
			return &CommitError{Err: err, Undone: true}
		}
	}
	return nil
}

func writeJSON(name string, v any) error {
	return writeFileAtomic(name, 0o600, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		return enc.Encode(v)
	})
}

func readJSON(name string, v any) error {
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// syncfs flushes the filesystem holding name.
func syncfs(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}
