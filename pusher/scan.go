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
	var st unix.Stat_t
	if err := unix.Lstat(root, &st); err != nil {
		return nil, fmt.Errorf("scanning %s: %w", root, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("scanning %s: not a directory", root)
	}
	rootDev := st.Dev
	tree, err := openTree(root)
	if err != nil {
		return nil, fmt.Errorf("scanning: %w", err)
	}
	defer tree.Close()
	rootFd, err := unix.Dup(tree.fd)
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", root, err)
	}
	// Directories are read in parallel, each with paths relative to its
	// own descriptor (no path walk per lstat).
	var (
		mu       sync.Mutex
		nodes    []Node
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
	holding := map[string]bool{} // directories with an entry left out
	var walk func(fd int, rel, abs string)
	walk = func(fd int, rel, abs string) {
		defer unix.Close(fd)
		if err := ctx.Err(); err != nil {
			fail(err)
			return
		}
		names, err := readDirNamesFd(fd)
		if err != nil {
			fail(fmt.Errorf("scanning %s: %w", abs, err))
			return
		}
		local := make([]Node, 0, len(names))
		var subdirs []int
		for _, name := range names {
			p := name
			if rel != "." {
				p = rel + "/" + name
			}
			if opts.Skip != nil && opts.Skip(p) {
				mu.Lock()
				holding[rel] = true
				mu.Unlock()
				continue
			}
			n, err := statNodeAt(fd, name, p, abs+"/"+name)
			if errors.Is(err, fs.ErrNotExist) {
				continue // gone since readdir
			}
			if err != nil {
				fail(err)
				return
			}
			if opts.OneFileSystem && n.Dev != rootDev && (opts.Cross == nil || !opts.Cross(p)) {
				mu.Lock()
				holding[rel] = true
				mu.Unlock()
				continue
			}
			local = append(local, n)
			if n.Type == images.TypeDir {
				subdirs = append(subdirs, len(local)-1)
			}
		}
		mu.Lock()
		nodes = append(nodes, local...)
		mu.Unlock()
		for _, k := range subdirs {
			n := local[k]
			name := n.Path[strings.LastIndexByte(n.Path, '/')+1:]
			cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			if err != nil {
				fail(fmt.Errorf("scanning %s: %w", abs+"/"+name, err))
				return
			}
			select {
			case sem <- struct{}{}:
				wg.Add(1)
				go func(cfd int, p, a string) {
					defer wg.Done()
					walk(cfd, p, a)
					<-sem
				}(cfd, n.Path, abs+"/"+name)
			default:
				walk(cfd, n.Path, abs+"/"+name)
			}
		}
	}
	rn, err := statNodeAt(tree.fd, ".", ".", root)
	if err != nil {
		unix.Close(rootFd)
		return nil, err
	}
	nodes = append(nodes, rn)
	walk(rootFd, ".", root)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
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
		x, err := readXattrsAt(pfd, name, tree.abs(n.Path))
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

func readDirNamesFd(fd int) ([]string, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
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
		buf := make([]byte, 256)
		for {
			n, err := unix.Readlinkat(dirfd, name, buf)
			if err != nil {
				return Node{}, fmt.Errorf("readlink %s: %w", abs, err)
			}
			if n < len(buf) {
				link = string(buf[:n])
				break
			}
			buf = make([]byte, len(buf)*4)
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
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return err
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
