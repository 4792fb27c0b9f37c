package pusher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images"
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

// stager writes files into the stage directory.
type stager struct {
	root, stage string
	write       *Limiter
	written     atomic.Int64
}

// stagedPath is the full path of a staged file.
func (s *stager) stagedPath(name string) string { return filepath.Join(s.stage, name) }

// exists reports whether the staged file is complete (it was renamed from
// its temporary name only once whole, with attributes applied).
func (s *stager) exists(name string) bool {
	_, err := os.Lstat(s.stagedPath(name))
	return err == nil
}

// stageFile writes content as the staged file name with e's attributes.
func (s *stager) stageFile(ctx context.Context, name string, e *images.Entry, content []byte) error {
	tmp := s.stagedPath(name + ".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if errors.Is(err, os.ErrExist) {
		// Left by an interrupted run.
		os.Remove(tmp)
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	}
	if err != nil {
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	var w io.Writer = f
	if s.write != nil {
		w = limitedWriter{Ctx: ctx, W: f, L: s.write}
	}
	for off := 0; off < len(content); {
		n := min(len(content)-off, 1<<20)
		if _, err := w.Write(content[off : off+n]); err != nil {
			f.Close()
			os.Remove(tmp)
			return fmt.Errorf("staging %s: %w", e.Path, err)
		}
		off += n
		crashPoint("write")
	}
	s.written.Add(int64(len(content)))
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	if err := applyAttrsFrom(tmp, e, fresh); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	if err := os.Rename(tmp, s.stagedPath(name)); err != nil {
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	crashPoint("staged")
	return nil
}

// stageNode stages a symlink, device, fifo or socket.
func (s *stager) stageNode(name string, e *images.Entry) error {
	tmp := s.stagedPath(name + ".tmp")
	os.Remove(tmp)
	var err error
	switch e.Type {
	case images.TypeSymlink:
		err = os.Symlink(e.Link, tmp)
	case images.TypeChar:
		err = unix.Mknod(tmp, unix.S_IFCHR|0o600, int(unix.Mkdev(e.DevMajor, e.DevMinor)))
	case images.TypeBlock:
		err = unix.Mknod(tmp, unix.S_IFBLK|0o600, int(unix.Mkdev(e.DevMajor, e.DevMinor)))
	case images.TypeFifo:
		err = unix.Mkfifo(tmp, 0o600)
	case images.TypeSocket:
		err = unix.Mknod(tmp, unix.S_IFSOCK|0o600, 0)
	default:
		err = fmt.Errorf("cannot stage a %s", e.Type)
	}
	if err != nil {
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	if err := applyAttrs(tmp, e); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("staging %s: %w", e.Path, err)
	}
	if err := os.Rename(tmp, s.stagedPath(name)); err != nil {
		return err
	}
	crashPoint("staged")
	return nil
}

func readNoFollow(name string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// applyAttrs sets owner, mode, xattrs and mtime of name (never following a
// symlink) to e's.
func applyAttrs(name string, e *images.Entry) error { return applyAttrsFrom(name, e, nil) }

// fresh stands for what a file the stager just created has: the agent's
// owner, mode 0600, no xattrs.
var fresh = &images.Entry{UID: os.Geteuid(), GID: os.Getegid(), Mode: 0o600}

// applyAttrsFrom is applyAttrs knowing what name has now (have; nil when
// unknown): it only changes what differs, so a commit that moves the
// mtimes of thousands of files makes one call per file, not four.
func applyAttrsFrom(name string, e, have *images.Entry) error {
	if have == nil || have.UID != e.UID || have.GID != e.GID {
		if err := os.Lchown(name, e.UID, e.GID); err != nil {
			return fmt.Errorf("chown %s: %w", name, err)
		}
	}
	// chown clears setuid and setgid: chmod comes after it.
	if e.Type != images.TypeSymlink && (have == nil || have.Mode != e.Mode || have.UID != e.UID || have.GID != e.GID) {
		if err := unix.Fchmodat(unix.AT_FDCWD, name, e.Mode&images.ModePerm, 0); err != nil {
			return fmt.Errorf("chmod %s: %w", name, err)
		}
	}
	if have == nil || !maps.Equal(have.Xattrs, e.Xattrs) {
		cur := map[string]string{}
		if have == nil || len(have.Xattrs) > 0 {
			x, err := readXattrs(name)
			if err != nil {
				return err
			}
			cur = x
		}
		for k := range cur {
			if _, ok := e.Xattrs[k]; !ok {
				if err := unix.Lremovexattr(name, k); err != nil && !errors.Is(err, unix.ENODATA) {
					return fmt.Errorf("removing xattr %s of %s: %w", k, name, err)
				}
			}
		}
		for k, v := range e.Xattrs {
			if hv, ok := cur[k]; ok && hv == v {
				continue
			}
			if err := unix.Lsetxattr(name, k, []byte(v), 0); err != nil {
				return fmt.Errorf("setting xattr %s of %s: %w", k, name, err)
			}
		}
	}
	ts := []unix.Timespec{{Sec: e.Mtime}, {Sec: e.Mtime}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting mtime of %s: %w", name, err)
	}
	return nil
}

// committer runs a journal's ops against a root.
type committer struct {
	root string
	j    *Journal
	dirs map[string]bool // parents checked to be real directories
}

func (c *committer) abs(p string) string {
	if p == "." {
		return c.root
	}
	return c.root + "/" + p
}

// checkParents makes sure no directory above p is a symlink or anything
// but a directory, so no op ever writes through a link.
func (c *committer) checkParents(p string) error {
	var chain []string
	for q := images.Parent(p); q != "." && !c.dirs[q]; q = images.Parent(q) {
		chain = append(chain, q)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		var st unix.Stat_t
		if err := unix.Lstat(c.abs(chain[i]), &st); err != nil {
			return fmt.Errorf("commit: parent %s of %s: %w", chain[i], p, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("commit: %w: parent %s of %s is not a directory", images.ErrUnsafePath, chain[i], p)
		}
		c.dirs[chain[i]] = true
	}
	return nil
}

func exists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}

// moveAside moves what is at target into the backup directory, once.
func (c *committer) moveAside(target, backup string) error {
	if !exists(target) {
		return nil
	}
	b := filepath.Join(c.j.Backup, backup)
	if exists(b) {
		// An earlier run moved the old one aside already; what is at
		// target now is not the old version, and not ours: drop it.
		return os.RemoveAll(target)
	}
	if err := os.Rename(target, b); err != nil {
		return fmt.Errorf("commit: moving %s aside: %w", target, err)
	}
	crashPoint("aside")
	return nil
}

func (c *committer) run(op *Op) error {
	if op.Path != "." {
		if err := c.checkParents(op.Path); err != nil {
			if op.Kind == OpRemove {
				// Its parent was replaced by a non-directory: the path is
				// gone already, and nothing is removed through a link.
				return nil
			}
			return err
		}
	}
	target := c.abs(op.Path)
	switch op.Kind {
	case OpMkdir:
		var st unix.Stat_t
		if unix.Lstat(target, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return nil
		}
		if err := c.moveAside(target, op.Backup); err != nil {
			return err
		}
		if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("commit: %w", err)
		}
	case OpPut:
		staged := filepath.Join(c.j.Stage, op.Stage)
		if !exists(staged) {
			if exists(target) {
				return nil // done by an earlier run
			}
			return fmt.Errorf("commit: staged file for %s is missing", op.Path)
		}
		if exists(target) {
			if err := c.moveAside(target, op.Backup); err != nil {
				return err
			}
		}
		if err := os.Rename(staged, target); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	case OpLink:
		src := c.abs(op.Entry.Link)
		var s1, s2 unix.Stat_t
		if unix.Lstat(src, &s1) != nil {
			return fmt.Errorf("commit: hardlink target %s of %s is missing", op.Entry.Link, op.Path)
		}
		if unix.Lstat(target, &s2) == nil && s1.Ino == s2.Ino && s1.Dev == s2.Dev {
			return nil
		}
		staged := filepath.Join(c.j.Stage, op.Stage)
		os.Remove(staged)
		if err := os.Link(src, staged); err != nil {
			return fmt.Errorf("commit: linking %s: %w", op.Path, err)
		}
		if err := c.moveAside(target, op.Backup); err != nil {
			return err
		}
		if err := os.Rename(staged, target); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	case OpRemove:
		var st unix.Stat_t
		if unix.Lstat(target, &st) != nil {
			return nil
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			// A directory that still holds local or unmanaged paths, or
			// is a mount point, stays.
			if err := unix.Rmdir(target); err != nil && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("commit: removing %s: %w", op.Path, err)
			}
			return nil
		}
		if err := c.moveAside(target, op.Backup); err != nil {
			return err
		}
	case OpAttrs:
		if err := applyAttrsFrom(target, op.Entry, op.Old); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	default:
		return fmt.Errorf("commit: unknown op %q", op.Kind)
	}
	crashPoint("op")
	return nil
}

// runJournal runs every op of j against root.
func runJournal(ctx context.Context, root string, j *Journal) error {
	c := &committer{root: root, j: j, dirs: map[string]bool{}}
	if err := os.MkdirAll(j.Backup, 0o700); err != nil {
		return err
	}
	for i := range j.Ops {
		// A commit is not interrupted by cancellation: stopping halfway
		// would only force recovery to finish it later.
		_ = ctx
		op := &j.Ops[i]
		if op.Kind == OpRemove || op.Kind == OpAttrs {
			// Parents may have been replaced: forget what was checked.
			if i > 0 && j.Ops[i-1].Kind != op.Kind {
				c.dirs = map[string]bool{}
			}
		}
		if err := c.run(op); err != nil {
			return err
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

var _ = strings.Cut
var _ sync.Mutex
