package pusher

import (
	"context"
	"encoding/gob"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/atomicfile"
)

// Node is one path found by Scan: its entry and where it lives.
type Node = images.Node

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
// (TreeDigest): the inode facts of every path, taken by the same lstat
// calls the nodes come from.
func scanDigest(ctx context.Context, root string, opts ScanOptions) ([]Node, TreeDigest, error) {
	dg := newDigester()
	t, err := images.WalkTree(ctx, root, opts.tree(dg, false))
	if err != nil {
		return nil, TreeDigest{}, fmt.Errorf("scanning: %w", err)
	}
	defer t.Close()
	if !opts.NoHash {
		if err := t.Hash(ctx); err != nil {
			return nil, TreeDigest{}, fmt.Errorf("scanning: %w", err)
		}
	}
	return t.Nodes, dg.digest(t), nil
}

// tree is the walk a scan makes: on a live host, so a path that changes
// while it is read is recorded as read (the stat cache keeps the inode
// facts from before reading, so the next scan reads it again), and
// feeding the digest dg. statsOnly builds no nodes (the quick check).
func (o ScanOptions) tree(dg *digester, statsOnly bool) images.TreeOptions {
	t := images.TreeOptions{
		Skip:          o.Skip,
		OneFileSystem: o.OneFileSystem,
		Cross:         o.Cross,
		StatsOnly:     statsOnly,
		Observe:       dg.observe,
		AllowChanging: true,
		BeforeRead: func(p string) {
			if RaceHook != nil {
				RaceHook("hash", p)
			}
		},
	}
	if o.Cache != nil {
		t.Vouch, t.Learn = o.Cache.vouch, o.Cache.store
	}
	return t
}

// statNodeAt is the node of name in dirfd, not following it.
var statNodeAt = images.StatNodeAt

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

// vouch fills in n's content hash and xattrs if the cache knows its
// inode facts.
func (c *StatCache) vouch(n *Node) bool {
	e, ok := c.lookup(n)
	if ok {
		n.SHA256, n.Xattrs = e.SHA256, e.Xattrs
	}
	return ok
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
	return atomicfile.Write(name, perm, fill)
}

// writeFileRename writes name through a temporary file and rename; with
// durable, the file and its directory are synced too (atomicfile.Write),
// else not (atomicfile.WriteVolatile: only for reports a crash may lose).
func writeFileRename(name string, perm os.FileMode, fill func(io.Writer) error, durable bool) error {
	if durable {
		return atomicfile.Write(name, perm, fill)
	}
	return atomicfile.WriteVolatile(name, perm, fill)
}

// NodesManifest turns scanned nodes into a manifest.
func NodesManifest(nodes []Node) (*images.Manifest, error) {
	es := make([]images.Entry, len(nodes))
	for i := range nodes {
		es[i] = nodes[i].Entry
	}
	return images.NewManifest(es)
}
