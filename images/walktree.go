package images

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images/internal/counting"
	"github.com/ingotfleet/ingot/internal/beneath"
)

// The one tree walker. WalkDir (making or checking an image from a
// directory) and the agent's scan of a host root (package pusher) both
// walk with WalkTree: every path is reached beneath the root's descriptor
// (package beneath), lstat'ed relative to its directory's descriptor,
// never followed; directories are read in parallel; xattrs are read by
// name in the open directory; hardlinked files are grouped here; contents
// are read by Tree.Hash or Tree.Read, only if still regular files.

// Node is one path a walk found: its entry and the inode facts lstat gave
// (what a stat cache or a digest of the tree keys on).
type Node struct {
	Entry
	Dev, Ino uint64
	Nlink    uint64
	Ctime    int64 // nanoseconds
	MtimeNs  int64
	// HoldsLocal: a directory with an entry the walk left out (a skipped
	// path, or a mount point of another filesystem that is not listed).
	HoldsLocal bool

	known bool // SHA256 and Xattrs vouched for by TreeOptions.Vouch
}

// DirObserver sees one directory's entries as the walk lstat'ed them.
type DirObserver interface {
	// Entry is called for each entry not skipped, in name order. mount:
	// it is on another filesystem and not entered.
	Entry(name string, st *unix.Stat_t, mount bool)
	// Done ends the directory.
	Done()
}

// TreeOptions tunes WalkTree: what a walk leaves out, and its hooks.
type TreeOptions struct {
	// Skip leaves out a path (and everything under a directory) when it
	// returns true. It is never asked about the root.
	Skip func(p string) bool
	// OneFileSystem keeps the walk on the root's filesystem: a path on
	// another device is not entered unless Cross says so for it. It is
	// listed with ListMounts, else left out (its directory HoldsLocal).
	OneFileSystem bool
	Cross         func(p string) bool
	ListMounts    bool
	// Xattr says which extended attributes to record; nil: all.
	Xattr func(name string) bool
	// Vouch, when set, may fill in the SHA256 (files) and Xattrs of a node
	// from what it knows of its inode facts; true: neither is read.
	Vouch func(n *Node) bool
	// Learn, when set, is called with each node whose xattrs (and, for a
	// file, content) the walk read. It may be called concurrently.
	Learn func(n *Node)
	// StatsOnly builds no nodes: only Observe sees the tree (a quick look
	// at the inode facts).
	StatsOnly bool
	// Observe, when set, is called once per directory walked, concurrently.
	Observe func(dir string) DirObserver
	// AllowChanging records a path that changes while it is walked as
	// found: an entry gone before its lstat is left out, a file that
	// changes (or is replaced) while it is read gets the size and hash of
	// the bytes read and the mtime after reading. Without it, each is an
	// error naming the path.
	AllowChanging bool
	// BeforeRead, when set, is called just before a file's content is
	// opened (tests use it to change the tree at that moment).
	BeforeRead func(p string)
}

// Tree is a walked tree: its nodes in manifest order (hardlinked files
// grouped as in a Manifest) and the root they were found under, held
// open for reading their contents. Close it.
type Tree struct {
	Nodes    []Node
	RootStat unix.Stat_t
	// Vanished: with AllowChanging, a path went away between reading its
	// directory and its lstat (or opening).
	Vanished bool
	dir      *beneath.Dir
	opts     TreeOptions
}

// walkers bounds the goroutines reading directories, and those reading
// contents.
const walkers = 4

// WalkTree walks the directory at root (a symlink given as root is
// followed; nothing under it is). Regular files that share an inode
// become one TypeFile, at the first of their paths in manifest order, and
// TypeHardlink entries at the others; their Node keeps the inode facts.
// No content is read: SHA256 is zero unless Vouch filled it in.
func WalkTree(ctx context.Context, root string, opts TreeOptions) (*Tree, error) {
	d, err := beneath.Open(root)
	if err != nil {
		return nil, fmt.Errorf("walking %s: %w", root, err)
	}
	t := &Tree{dir: d, opts: opts}
	if err := unix.Fstat(d.Fd(), &t.RootStat); err != nil {
		_ = d.Close() // read-only
		return nil, fmt.Errorf("walking %s: %w", root, &os.PathError{Op: "fstat", Path: root, Err: err})
	}
	w := &treeWalk{t: t, ctx: ctx, holding: map[string]bool{}, sem: make(chan struct{}, walkers)}
	if !opts.StatsOnly {
		if err := w.addRoot(); err != nil {
			_ = d.Close() // read-only
			return nil, err
		}
	}
	if err := w.walkRoot(); err != nil {
		_ = d.Close() // read-only
		return nil, err
	}
	t.Nodes = w.nodes
	t.finish(w.holding)
	return t, nil
}

// Close closes the root's descriptor.
func (t *Tree) Close() error { return t.dir.Close() }

// Root is the walked root's path.
func (t *Tree) Root() string { return t.dir.Path() }

// treeWalk is the state of one WalkTree.
type treeWalk struct {
	t       *Tree
	ctx     context.Context
	sem     chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	nodes   []Node
	holding map[string]bool // directories with an entry left out
	err     error
}

func (w *treeWalk) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

// addRoot adds the root's own node.
func (w *treeWalk) addRoot() error {
	n, err := NodeFromStat(&w.t.RootStat, ".", "")
	if err != nil {
		return err
	}
	if err := w.t.describe(&n, w.t.dir.Fd(), ".", w.t.dir.Path()); err != nil {
		return err
	}
	w.nodes = append(w.nodes, n)
	return nil
}

// walkRoot walks the root directory and everything under it.
func (w *treeWalk) walkRoot() error {
	fd, err := unix.Dup(w.t.dir.Fd())
	if err != nil {
		return fmt.Errorf("walking %s: %w", w.t.dir.Path(), err)
	}
	w.dir(fd, ".", w.t.dir.Path())
	w.wg.Wait()
	return w.err
}

// dirEntries is what walking one directory found.
type dirEntries struct {
	nodes    []Node
	subdirs  []string // names of the directories to enter
	holds    bool
	vanished bool
}

// dir walks the open directory fd (entry path rel, host path abs), then
// its subdirectories, each on another goroutine while one is free. It
// closes fd.
func (w *treeWalk) dir(fd int, rel, abs string) {
	defer func() { _ = unix.Close(fd) }() // read-only directory
	if err := w.ctx.Err(); err != nil {
		w.fail(err)
		return
	}
	names, err := beneath.ReadDirNames(fd)
	if err != nil {
		w.fail(fmt.Errorf("walking %s: %w", abs, err))
		return
	}
	var obs DirObserver
	if w.t.opts.Observe != nil {
		obs = w.t.opts.Observe(rel)
	}
	de, err := w.entries(fd, rel, abs, names, obs)
	if err != nil {
		w.fail(err)
		return
	}
	w.enter(fd, rel, abs, de, obs)
}

// enter records what one directory held and walks its subdirectories.
func (w *treeWalk) enter(fd int, rel, abs string, de *dirEntries, obs DirObserver) {
	if obs != nil {
		obs.Done()
	}
	w.mu.Lock()
	w.nodes = append(w.nodes, de.nodes...)
	if de.holds {
		w.holding[rel] = true
	}
	if de.vanished {
		w.t.Vanished = true
	}
	w.mu.Unlock()
	for _, name := range de.subdirs {
		cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && w.t.opts.AllowChanging {
			w.mu.Lock()
			w.t.Vanished = true
			w.mu.Unlock()
			continue
		}
		if err != nil {
			w.fail(fmt.Errorf("walking %s: %w", w.t.dir.Path(), &os.PathError{Op: "open", Path: abs + "/" + name, Err: err}))
			return
		}
		w.spawn(cfd, join(rel, name), abs+"/"+name)
	}
}

// spawn walks directory fd on a new goroutine if one is free, else on
// this one.
func (w *treeWalk) spawn(fd int, rel, abs string) {
	select {
	case w.sem <- struct{}{}:
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.dir(fd, rel, abs)
			<-w.sem
		}()
	default:
		w.dir(fd, rel, abs)
	}
}

func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// entries lstats each of names in directory fd and makes their nodes.
func (w *treeWalk) entries(fd int, rel, abs string, names []string, obs DirObserver) (*dirEntries, error) {
	opts := &w.t.opts
	de := &dirEntries{}
	if !opts.StatsOnly {
		de.nodes = make([]Node, 0, len(names))
	}
	for _, name := range names {
		p := join(rel, name)
		if opts.Skip != nil && opts.Skip(p) {
			de.holds = true
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) && opts.AllowChanging {
				de.vanished = true
				continue // gone since readdir
			}
			return nil, fmt.Errorf("walking %s: %w", w.t.dir.Path(), &os.PathError{Op: "lstat", Path: abs + "/" + name, Err: err})
		}
		mount := opts.OneFileSystem && st.Dev != w.t.RootStat.Dev && (opts.Cross == nil || !opts.Cross(p))
		if obs != nil {
			obs.Entry(name, &st, mount)
		}
		if mount && !opts.ListMounts {
			de.holds = true
			continue
		}
		if !opts.StatsOnly {
			n, err := w.t.node(fd, name, p, abs+"/"+name, &st)
			if err != nil {
				return nil, err
			}
			de.nodes = append(de.nodes, n)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR && !mount {
			de.subdirs = append(de.subdirs, name)
		}
	}
	return de, nil
}

// node makes the node of name in dirfd (entry path p, host path abs),
// lstat'ed as st, with its xattrs unless Vouch knows them.
func (t *Tree) node(dirfd int, name, p, abs string, st *unix.Stat_t) (Node, error) {
	var link string
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		var err error
		if link, err = beneath.Readlink(dirfd, name, abs); err != nil {
			return Node{}, fmt.Errorf("walking %s: %w", t.dir.Path(), err)
		}
	}
	n, err := NodeFromStat(st, p, link)
	if err != nil {
		return Node{}, fmt.Errorf("walking %s: %w", t.dir.Path(), err)
	}
	return n, t.describe(&n, dirfd, name, abs)
}

// describe fills in n's xattrs (name in dirfd), or what Vouch knows.
func (t *Tree) describe(n *Node, dirfd int, name, abs string) error {
	if t.opts.Vouch != nil && t.opts.Vouch(n) {
		n.known = true
		return nil
	}
	x, err := beneath.ReadXattrsAt(dirfd, name, abs, t.opts.Xattr)
	if err != nil {
		return fmt.Errorf("walking %s: %w", t.dir.Path(), err)
	}
	n.Xattrs = x
	if t.opts.Learn != nil && n.Type != TypeFile {
		t.opts.Learn(n)
	}
	return nil
}

// finish sorts the nodes, marks the directories holding left-out paths
// and groups hardlinked files.
func (t *Tree) finish(holding map[string]bool) {
	nodes := t.Nodes
	slices.SortFunc(nodes, func(a, b Node) int { return ComparePaths(a.Path, b.Path) })
	first := map[[2]uint64]string{}
	for i := range nodes {
		n := &nodes[i]
		if holding[n.Path] {
			n.HoldsLocal = true
		}
		if n.Type != TypeFile || n.Nlink < 2 {
			continue
		}
		k := [2]uint64{n.Dev, n.Ino}
		if f, ok := first[k]; ok {
			n.Entry = Entry{Path: n.Path, Type: TypeHardlink, Link: f}
			n.known = false
			continue
		}
		first[k] = n.Path
	}
}

// NodeFromStat is the node of entry path rel as lstat gave st (link: a
// symlink's target); no xattrs, no content hash.
func NodeFromStat(st *unix.Stat_t, rel, link string) (Node, error) {
	n := Node{
		Entry: Entry{
			Path:  rel,
			Mode:  st.Mode & ModePerm,
			UID:   int(st.Uid),
			GID:   int(st.Gid),
			Mtime: st.Mtim.Sec,
		},
		Dev: st.Dev, Ino: st.Ino, Nlink: uint64(st.Nlink),
		Ctime: st.Ctim.Nano(), MtimeNs: st.Mtim.Nano(),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.Type = TypeFile
		n.Size = st.Size
	case unix.S_IFDIR:
		n.Type = TypeDir
	case unix.S_IFLNK:
		n.Type = TypeSymlink
		n.Link = link
	case unix.S_IFCHR:
		n.Type = TypeChar
		n.DevMajor, n.DevMinor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFBLK:
		n.Type = TypeBlock
		n.DevMajor, n.DevMinor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFIFO:
		n.Type = TypeFifo
	case unix.S_IFSOCK:
		n.Type = TypeSocket
	default:
		return Node{}, fmt.Errorf("lstat %s: unknown file type %o", rel, st.Mode&unix.S_IFMT)
	}
	return n, nil
}

// StatNodeAt is the node of name in dirfd (entry path rel, host path abs
// for messages), not following it; fs.ErrNotExist when nothing is there.
// No xattrs, no content hash.
func StatNodeAt(dirfd int, name, rel, abs string) (Node, error) {
	st, err := beneath.Lstat(dirfd, name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Node{}, fs.ErrNotExist
		}
		return Node{}, fmt.Errorf("lstat %s: %w", abs, err)
	}
	var link string
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		if link, err = beneath.Readlink(dirfd, name, abs); err != nil {
			return Node{}, err
		}
	}
	return NodeFromStat(&st, rel, link)
}

// unknownFiles lists the files (not hardlinks) whose content Vouch did
// not vouch for, by index in Nodes.
func (t *Tree) unknownFiles() []int {
	var idx []int
	for i := range t.Nodes {
		if n := &t.Nodes[i]; n.Type == TypeFile && !n.known {
			idx = append(idx, i)
		}
	}
	return idx
}

// Hash reads and hashes every file whose content Vouch did not vouch for,
// several at a time, and passes each to Learn.
func (t *Tree) Hash(ctx context.Context) error {
	idx := t.unknownFiles()
	if err := t.parallel(ctx, idx, func(n *Node, buf []byte) error { return t.read(n, buf, nil, nil) }); err != nil {
		return err
	}
	if t.opts.Learn != nil {
		for _, i := range idx {
			t.opts.Learn(&t.Nodes[i])
		}
	}
	return nil
}

// parallel calls read for the nodes idx on several goroutines, each with
// its own buffer, and returns the first error (the others stop then).
func (t *Tree) parallel(ctx context.Context, idx []int, read func(n *Node, buf []byte) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errs := make(chan error, walkers)
	for range walkers {
		go func() {
			buf := make([]byte, 256<<10)
			for i := range next {
				if err := read(&t.Nodes[i], buf); err != nil {
					errs <- err
					cancel()
					for range next { // let the feeder finish
					}
					return
				}
			}
			errs <- nil
		}()
	}
feed:
	for _, i := range idx {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	var first error
	for range walkers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// read reads the content of file node n into its SHA256 (and Size, as
// read), passing it through tee and fn when set. The file is opened
// beneath the root, never through a symlink, without blocking, and only
// if it is a regular file; one replaced since its lstat, or changed while
// it is read, is an error unless AllowChanging.
func (t *Tree) read(n *Node, buf []byte, tee io.Writer, fn FileFunc) error {
	if t.opts.BeforeRead != nil {
		t.opts.BeforeRead(n.Path)
	}
	root, abs := t.dir.Path(), t.dir.Abs(n.Path)
	f, err := t.openContent(n.Path)
	if err != nil {
		return fmt.Errorf("walking %s: %w", root, err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("walking %s: %w", root, &os.PathError{Op: "fstat", Path: abs, Err: err})
	}
	if (st.Dev != n.Dev || st.Ino != n.Ino) && !t.opts.AllowChanging {
		return fmt.Errorf("walking %s: %s was replaced while the tree was read", root, abs)
	}
	h := sha256.New()
	var dst io.Writer = h
	if tee != nil {
		dst = io.MultiWriter(h, tee)
	}
	var size int64
	if fn != nil {
		cr := &counting.Reader{R: io.TeeReader(f, dst)}
		if err := fn(&n.Entry, cr); err != nil {
			return fmt.Errorf("walking %s: content of %s: %w", root, DisplayPath(n.Path), err)
		}
		_, err = io.CopyBuffer(io.Discard, cr, buf)
		size = cr.N
	} else {
		size, err = io.CopyBuffer(dst, struct{ io.Reader }{f}, buf)
	}
	if err != nil {
		return fmt.Errorf("walking %s: reading %s: %w", root, abs, err)
	}
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("walking %s: %w", root, &os.PathError{Op: "fstat", Path: abs, Err: err})
	}
	if size != n.Size || st.Size != n.Size || st.Mtim.Sec != n.Mtime {
		if !t.opts.AllowChanging {
			return fmt.Errorf("walking %s: %s changed while it was read", root, abs)
		}
		n.Mtime = st.Mtim.Sec
	}
	n.Size = size
	h.Sum(n.SHA256[:0])
	return nil
}

// openContent opens rel for reading its content: beneath the root, not
// following anything, non-blocking, without updating its atime where
// allowed, only a regular file.
func (t *Tree) openContent(rel string) (*os.File, error) {
	flags := unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY
	fd, err := t.dir.OpenAt(rel, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = t.dir.OpenAt(rel, flags, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", t.dir.Abs(rel), err)
	}
	return beneath.RegularFile(fd, t.dir.Abs(rel))
}
