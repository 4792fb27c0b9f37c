package pusher

import (
	"context"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/beneath"
)

// Node is one path found by Scan: its entry and where it lives.
type Node struct {
	images.Entry
	Dev, Ino uint64
	Nlink    uint64
	Ctime    int64 // nanoseconds
	MtimeNs  int64
	// HoldsLocal: a directory with an entry the scan left out (a local
	// path, or a mount point of another filesystem).
	HoldsLocal bool
}

// ScanOptions says what Scan leaves out.
type ScanOptions struct {
	// Skip reports paths (and, for directories, everything under them)
	// that the scan does not report at all: local paths.
	Skip func(p string) bool
	// OneFileSystem keeps the scan on the root's filesystem: a directory
	// on another device is neither reported nor entered, unless Cross
	// says so for its path.
	OneFileSystem bool
	Cross         func(p string) bool
	// Cache, when set, vouches for the content hash and xattrs of files
	// whose inode, size, mtime and ctime have not changed.
	Cache *StatCache
	// NoHash leaves SHA256 zero for files the cache cannot vouch for
	// (a quick look).
	NoHash bool
}

// Scan walks root with lstat only (it never follows a symlink) and
// returns every path in manifest order. Hardlinked files are reported as
// one TypeFile (the first path in manifest order) and TypeHardlink
// entries. UID and GID are numeric; names are left empty.
func Scan(ctx context.Context, root string, opts ScanOptions) ([]Node, error) {
	nodes, _, err := scanDigest(ctx, root, opts)
	return nodes, err
}

// scanDigest is Scan that also returns the digest of what it saw
// (treeDigest): the inode facts of every path, taken by the same lstat
// calls the nodes come from.
func scanDigest(ctx context.Context, root string, opts ScanOptions) ([]Node, TreeDigest, error) {
	w, err := walkTree(ctx, root, opts, false)
	if err != nil {
		return nil, TreeDigest{}, err
	}
	nodes, err := finishScan(ctx, w, opts)
	return nodes, w.digest(), err
}

// walked is what walkTree found.
type walked struct {
	tree     *dirTree
	nodes    []Node
	holding  map[string]bool          // directories with an entry left out
	dirs     map[string]images.Digest // per directory: the digest of its entries
	rootStat [statTupleLen]byte
	// unsure: the digest cannot vouch for the tree (a path changed
	// while it was read, or its ctime is not older than the walk).
	unsure bool
	start  int64 // CLOCK_REALTIME_COARSE when the walk began, in ns
}

// walkTree reads every directory of root in parallel, each with paths
// relative to its own descriptor (no path walk per lstat). With
// statsOnly it builds no nodes: only the digest (a quick check).
func walkTree(ctx context.Context, root string, opts ScanOptions, statsOnly bool) (*walked, error) {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_REALTIME_COARSE, &ts)
	w := &walked{holding: map[string]bool{}, dirs: map[string]images.Digest{}, start: ts.Nano()}
	tree, err := openTree(root)
	if err != nil {
		return nil, fmt.Errorf("scanning: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(tree.fd, &st); err != nil {
		tree.Close()
		return nil, fmt.Errorf("scanning %s: %w", root, err)
	}
	w.tree = tree
	rootDev := st.Dev
	statTuple(w.rootStat[:], &st)
	rootFd, err := unix.Dup(tree.fd)
	if err != nil {
		tree.Close()
		return nil, fmt.Errorf("scanning %s: %w", root, err)
	}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, 4)
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	var walk func(fd int, rel, abs string)
	walk = func(fd int, rel, abs string) {
		defer unix.Close(fd)
		if err := ctx.Err(); err != nil {
			fail(err)
			return
		}
		names, err := beneath.ReadDirNames(fd)
		if err != nil {
			fail(fmt.Errorf("scanning %s: %w", abs, err))
			return
		}
		var local []Node
		if !statsOnly {
			local = make([]Node, 0, len(names))
		}
		type sub struct{ name, rel string }
		var subdirs []sub
		dh := sha256.New()
		var tuple [statTupleLen]byte
		holds, unsure := false, false
		for _, name := range names {
			p := name
			if rel != "." {
				p = rel + "/" + name
			}
			if opts.Skip != nil && opts.Skip(p) {
				holds = true
				continue
			}
			var st unix.Stat_t
			if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				if errors.Is(err, unix.ENOENT) {
					unsure = true
					continue // gone since readdir
				}
				fail(fmt.Errorf("lstat %s: %w", abs+"/"+name, err))
				return
			}
			if st.Ctim.Nano() >= w.start {
				unsure = true
			}
			statTuple(tuple[:], &st)
			dh.Write([]byte(name))
			if opts.OneFileSystem && st.Dev != rootDev && (opts.Cross == nil || !opts.Cross(p)) {
				// A mount point: its own facts are what is digested.
				dh.Write([]byte{0, 'm'})
				dh.Write(tuple[:])
				holds = true
				continue
			}
			dh.Write([]byte{0, 'e'})
			dh.Write(tuple[:])
			isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
			if !statsOnly {
				var link string
				if st.Mode&unix.S_IFMT == unix.S_IFLNK {
					if link, err = beneath.Readlink(fd, name, abs+"/"+name); err != nil {
						fail(err)
						return
					}
				}
				n, err := nodeFromStat(&st, p, link)
				if err != nil {
					fail(err)
					return
				}
				local = append(local, n)
			}
			if isDir {
				subdirs = append(subdirs, sub{name, p})
			}
		}
		var d images.Digest
		dh.Sum(d[:0])
		mu.Lock()
		w.nodes = append(w.nodes, local...)
		w.dirs[rel] = d
		if holds {
			w.holding[rel] = true
		}
		if unsure {
			w.unsure = true
		}
		mu.Unlock()
		for _, sd := range subdirs {
			cfd, err := unix.Openat(fd, sd.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if errors.Is(err, unix.ENOENT) {
				mu.Lock()
				w.unsure = true
				mu.Unlock()
				continue
			}
			if err != nil {
				fail(fmt.Errorf("scanning %s: %w", abs+"/"+sd.name, err))
				return
			}
			select {
			case sem <- struct{}{}:
				wg.Add(1)
				go func(cfd int, p, a string) {
					defer wg.Done()
					walk(cfd, p, a)
					<-sem
				}(cfd, sd.rel, abs+"/"+sd.name)
			default:
				walk(cfd, sd.rel, abs+"/"+sd.name)
			}
		}
	}
	if !statsOnly {
		rn, err := nodeFromStat(&st, ".", "")
		if err != nil {
			unix.Close(rootFd)
			tree.Close()
			return nil, err
		}
		w.nodes = append(w.nodes, rn)
	}
	walk(rootFd, ".", root)
	wg.Wait()
	if firstErr != nil {
		tree.Close()
		return nil, firstErr
	}
	return w, nil
}

// finishScan sorts the nodes, finds hardlinks and fills in content
// hashes and xattrs (from the cache where it vouches for them).
func finishScan(ctx context.Context, w *walked, opts ScanOptions) ([]Node, error) {
	tree := w.tree
	defer tree.Close()
	nodes, holding := w.nodes, w.holding
	var err error
	slices.SortFunc(nodes, func(a, b Node) int { return images.ComparePaths(a.Path, b.Path) })
	for i := range nodes {
		if holding[nodes[i].Path] {
			nodes[i].HoldsLocal = true
		}
	}

	// Hardlinks: the first path of an inode is the file.
	type key struct{ dev, ino uint64 }
	first := map[key]string{}
	var toHash []int
	for i := range nodes {
		n := &nodes[i]
		if n.Type != images.TypeFile {
			continue
		}
		if n.Nlink > 1 {
			k := key{n.Dev, n.Ino}
			if f, ok := first[k]; ok {
				n.Entry = images.Entry{Path: n.Path, Type: images.TypeHardlink, Link: f}
				continue
			}
			first[k] = n.Path
		}
		if opts.Cache != nil {
			if c, ok := opts.Cache.lookup(n); ok {
				n.SHA256 = c.SHA256
				n.Xattrs = c.Xattrs
				continue
			}
		}
		toHash = append(toHash, i)
	}
	// Xattrs of what the cache did not cover (it vouches for directories,
	// symlinks and nodes too: setxattr moves ctime).
	vouched := make([]bool, len(nodes))
	if opts.Cache != nil {
		for i := range nodes {
			n := &nodes[i]
			switch n.Type {
			case images.TypeFile:
				vouched[i] = true
			case images.TypeHardlink:
			default:
				if c, ok := opts.Cache.lookup(n); ok {
					n.Xattrs = c.Xattrs
					vouched[i] = true
				}
			}
		}
		for _, i := range toHash {
			vouched[i] = false
		}
	}
	// Xattrs are read by name in the parent's descriptor, opened beneath
	// the root (nodes are sorted, so siblings share one).
	pfd, pdir := -1, ""
	defer func() {
		if pfd >= 0 {
			unix.Close(pfd)
		}
	}()
	for i := range nodes {
		n := &nodes[i]
		if n.Type == images.TypeHardlink || vouched[i] {
			continue
		}
		dir, name := images.Parent(n.Path), n.Path[strings.LastIndexByte(n.Path, '/')+1:]
		if n.Path == "." {
			dir, name = ".", "."
		}
		if pfd < 0 || dir != pdir {
			if pfd >= 0 {
				unix.Close(pfd)
			}
			if pfd, err = tree.dir(dir); err != nil {
				return nil, fmt.Errorf("scanning %s: %w", tree.abs(dir), err)
			}
			pdir = dir
		}
		x, err := beneath.ReadXattrsAt(pfd, name, tree.abs(n.Path), nil)
		if err != nil {
			return nil, err
		}
		n.Xattrs = x
		if opts.Cache != nil && n.Type != images.TypeFile {
			opts.Cache.store(n)
		}
	}
	if !opts.NoHash {
		if err := hashFiles(ctx, tree, nodes, toHash); err != nil {
			return nil, err
		}
		if opts.Cache != nil {
			for _, i := range toHash {
				opts.Cache.store(&nodes[i])
			}
		}
	}
	return nodes, nil
}

func hashFiles(ctx context.Context, tree *dirTree, nodes []Node, idx []int) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for i := range next {
				d, err := hashFile(tree, nodes[i].Path, buf)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				nodes[i].SHA256 = d
			}
		}()
	}
	for _, i := range idx {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// hashFile reads rel beneath tree: only a regular file, opened without
// blocking (a FIFO swapped in is an error for that path, not a hang).
func hashFile(tree *dirTree, rel string, buf []byte) (images.Digest, error) {
	if RaceHook != nil {
		RaceHook("hash", rel)
	}
	f, err := tree.openRegular(rel)
	if err != nil {
		return images.Digest{}, fmt.Errorf("hashing: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, buf); err != nil {
		return images.Digest{}, fmt.Errorf("hashing %s: %w", tree.abs(rel), err)
	}
	var d images.Digest
	h.Sum(d[:0])
	return d, nil
}

// statNodeAt is statNode relative to a directory descriptor.
func statNodeAt(dirfd int, name, rel, abs string) (Node, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return Node{}, fs.ErrNotExist
		}
		return Node{}, fmt.Errorf("lstat %s: %w", abs, err)
	}
	var link string
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		var err error
		if link, err = beneath.Readlink(dirfd, name, abs); err != nil {
			return Node{}, err
		}
	}
	return nodeFromStat(&st, rel, link)
}

func nodeFromStat(st *unix.Stat_t, rel, link string) (Node, error) {
	n := Node{
		Entry: images.Entry{
			Path:  rel,
			Mode:  st.Mode & images.ModePerm,
			UID:   int(st.Uid),
			GID:   int(st.Gid),
			Mtime: st.Mtim.Sec,
		},
		Dev: st.Dev, Ino: st.Ino, Nlink: uint64(st.Nlink),
		Ctime: st.Ctim.Nano(), MtimeNs: st.Mtim.Nano(),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.Type = images.TypeFile
		n.Size = st.Size
	case unix.S_IFDIR:
		n.Type = images.TypeDir
	case unix.S_IFLNK:
		n.Type = images.TypeSymlink
		n.Link = link
	case unix.S_IFCHR:
		n.Type = images.TypeChar
		n.DevMajor, n.DevMinor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFBLK:
		n.Type = images.TypeBlock
		n.DevMajor, n.DevMinor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case unix.S_IFIFO:
		n.Type = images.TypeFifo
	case unix.S_IFSOCK:
		n.Type = images.TypeSocket
	default:
		return Node{}, fmt.Errorf("lstat %s: unknown file type %o", rel, st.Mode&unix.S_IFMT)
	}
	return n, nil
}

// StatCache remembers, per path, the content hash and xattrs of a file
// along with the inode facts that change whenever either does (inode
// number, size, mtime and ctime in nanoseconds: writing, chmod, chown and
// setxattr all move ctime). A file whose facts match is not read again.
type StatCache struct {
	mu    sync.Mutex
	m     map[string]cached
	dirty bool
}

type cached struct {
	Dev, Ino, Size uint64
	Mtime, Ctime   int64
	SHA256         images.Digest
	Xattrs         map[string]string
}

// NewStatCache returns an empty cache.
func NewStatCache() *StatCache { return &StatCache{m: map[string]cached{}} }

func (c *StatCache) lookup(n *Node) (cached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[n.Path]
	if !ok || e.Dev != n.Dev || e.Ino != n.Ino || e.Size != uint64(n.Size) || e.Mtime != n.MtimeNs || e.Ctime != n.Ctime {
		return cached{}, false
	}
	return e, true
}

func (c *StatCache) store(n *Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty = true
	c.m[n.Path] = cached{Dev: n.Dev, Ino: n.Ino, Size: uint64(n.Size), Mtime: n.MtimeNs, Ctime: n.Ctime, SHA256: n.SHA256, Xattrs: n.Xattrs}
}

// LoadStatCache reads a cache file; a missing or unreadable one gives an
// empty cache (the cost is hashing again, never a wrong answer).
func LoadStatCache(name string) *StatCache {
	c := NewStatCache()
	f, err := os.Open(name)
	if err != nil {
		return c
	}
	defer f.Close()
	var m map[string]cached
	if gob.NewDecoder(f).Decode(&m) == nil {
		c.m = m
	}
	return c
}

// Save writes the cache atomically.
func (c *StatCache) Save(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty = false
	return writeFileAtomic(name, 0o600, func(w io.Writer) error { return gob.NewEncoder(w).Encode(c.m) })
}

// writeFileAtomic writes name through a temporary file, fsync and rename.
func writeFileAtomic(name string, perm os.FileMode, fill func(io.Writer) error) error {
	return writeFileRename(name, perm, fill, true)
}

// writeFileRename writes name through a temporary file and rename; with
// durable, the file and its directory are synced too. Without, a crash
// may leave the old content (or, on filesystems that do not order data
// before renames, an empty file): only for reports a crash may lose.
func writeFileRename(name string, perm os.FileMode, fill func(io.Writer) error, durable bool) error {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := fill(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
	}
	if !durable {
		return nil
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// NodesManifest turns scanned nodes into a manifest.
func NodesManifest(nodes []Node) (*images.Manifest, error) {
	es := make([]images.Entry, len(nodes))
	for i := range nodes {
		es[i] = nodes[i].Entry
	}
	return images.NewManifest(es)
}
