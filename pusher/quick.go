package pusher

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"io"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/pusher/plan"
)

// The quick no-change check. A sync to the image the host already runs
// usually finds nothing to do; proving that with a full scan means
// reading the saved manifest, the stat cache and every xattr. Instead,
// when a full scan finds the host exactly at its image, the agent keeps
// the digest of what that scan saw (StateDir/quick.json): for every path
// it manages, its name and its inode facts as lstat gives them (device,
// inode, type and mode, owner, link count, size, device numbers, mtime
// and ctime in nanoseconds), directory by directory. The next sync to
// the same image walks the root with lstat only, recomputes the digest,
// and when it is the same, the host is where the scan left it.
//
// Why equal facts mean an unchanged host: writing a file, truncating,
// chmod, chown, setxattr (ACLs, capabilities), link and unlink all set
// the inode's ctime to the current time, which no call can set back;
// creating, removing or renaming an entry does the same to its
// directory. Replacing a path gives a new inode with a new ctime; a
// mount over a path changes its device. What the digest cannot see, and
// the fast path therefore assumes: the wall clock does not step back
// between the record and the check (a record from the future is not
// used), the filesystem keeps POSIX ctime (local filesystems do), and
// nothing changes content behind the kernel's back (raw writes to the
// block device). A path whose ctime is not older than the start of the
// recording scan is one the digest cannot vouch for (a change in the
// same clock tick could follow unseen): no record is written then, and
// the next check is a full one again. A sync that commits scans once
// more when it is done, a clock tick after its last write, so that the
// first no-change sync after a push is quick too (recordCommitted). These are the stat cache's
// assumptions too: a full sync trusts the same facts for file content.

// statTupleLen is the size of the encoded inode facts of one path.
const statTupleLen = 8 * 11

// statTuple encodes the inode facts the digest covers into b.
func statTuple(b []byte, st *unix.Stat_t) {
	le := binary.LittleEndian
	le.PutUint64(b[0:], st.Dev)
	le.PutUint64(b[8:], st.Ino)
	le.PutUint64(b[16:], uint64(st.Mode)<<32|uint64(st.Nlink))
	le.PutUint64(b[24:], uint64(st.Uid)<<32|uint64(st.Gid))
	le.PutUint64(b[32:], st.Rdev)
	le.PutUint64(b[40:], uint64(st.Size))
	le.PutUint64(b[48:], uint64(st.Mtim.Sec))
	le.PutUint64(b[56:], uint64(st.Mtim.Nsec))
	le.PutUint64(b[64:], uint64(st.Ctim.Sec))
	le.PutUint64(b[72:], uint64(st.Ctim.Nsec))
	le.PutUint64(b[80:], 0)
}

// TreeDigest is the digest of a walk: of the root's facts and, in path
// order, each directory's entries. Sure is false when a path changed
// during the walk or is too recent to vouch for.
type TreeDigest struct {
	Digest images.Digest
	Paths  int
	Sure   bool
	Start  int64 // when the walk began (coarse wall clock, ns)
}

// digester makes the TreeDigest of a walk: as each directory is read
// (concurrently), the digest of its entries' names and inode facts.
type digester struct {
	start  int64 // CLOCK_REALTIME_COARSE when the walk began, in ns
	mu     sync.Mutex
	dirs   map[string]images.Digest
	unsure bool // a ctime not older than start
}

func newDigester() *digester {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_REALTIME_COARSE, &ts) // cannot fail for this clock
	return &digester{start: ts.Nano(), dirs: map[string]images.Digest{}}
}

func (d *digester) observe(dir string) images.DirObserver {
	return &dirDigest{d: d, dir: dir, h: sha256.New()}
}

// dirDigest is the digest of one directory's entries.
type dirDigest struct {
	d      *digester
	dir    string
	h      hash.Hash
	tuple  [statTupleLen]byte
	unsure bool
}

func (o *dirDigest) Entry(name string, st *unix.Stat_t, mount bool) {
	if st.Ctim.Nano() >= o.d.start {
		o.unsure = true
	}
	statTuple(o.tuple[:], st)
	o.h.Write([]byte(name))
	if mount {
		// A mount point: its own facts are what is digested.
		o.h.Write([]byte{0, 'm'})
	} else {
		o.h.Write([]byte{0, 'e'})
	}
	o.h.Write(o.tuple[:])
}

func (o *dirDigest) Done() {
	var sum images.Digest
	o.h.Sum(sum[:0])
	o.d.mu.Lock()
	o.d.dirs[o.dir] = sum
	if o.unsure {
		o.d.unsure = true
	}
	o.d.mu.Unlock()
}

// digest is the digest of walk t: the root's facts, then each
// directory's digest in path order.
func (d *digester) digest(t *images.Tree) TreeDigest {
	h := sha256.New()
	var root [statTupleLen]byte
	statTuple(root[:], &t.RootStat)
	h.Write(root[:])
	n := 0
	for _, dir := range slices.SortedFunc(maps.Keys(d.dirs), images.ComparePaths) {
		v := d.dirs[dir]
		h.Write([]byte(dir))
		h.Write([]byte{0})
		h.Write(v[:])
		n++
	}
	td := TreeDigest{Paths: n, Sure: !d.unsure && !t.Vanished, Start: d.start}
	h.Sum(td.Digest[:0])
	return td
}

// quickRecord is StateDir/quick.json.
type quickRecord struct {
	// Key covers the image and every setting that decides which paths
	// a scan reports (root, state directory, local and cross globs).
	Key   images.Digest `json:"key"`
	Tree  images.Digest `json:"tree"`
	Start int64         `json:"start"`
}

// quickKey is the record's key for image d under the Syncer's settings.
func (s *Syncer) quickKey(d images.Digest) images.Digest {
	h := sha256.New()
	_, _ = io.WriteString(h, "ingot quick v1\x00")
	h.Write(d[:])
	for _, v := range []string{s.Root, s.relState()} {
		_, _ = io.WriteString(h, v)
		h.Write([]byte{0})
	}
	for _, g := range s.Local {
		_, _ = io.WriteString(h, "local "+g.String()+"\x00")
	}
	for _, g := range s.Cross {
		_, _ = io.WriteString(h, "cross "+g.String()+"\x00")
	}
	var k images.Digest
	h.Sum(k[:0])
	return k
}

// quickWalk walks the root as a sync's scan does, with lstat only.
func (s *Syncer) quickWalk(ctx context.Context) (TreeDigest, error) {
	dg := newDigester()
	t, err := images.WalkTree(ctx, s.Root, s.scanOptions(nil).tree(dg, true))
	if err != nil {
		return TreeDigest{}, err
	}
	_ = t.Close() // read-only
	return dg.digest(t), nil
}

// quickUnchanged reports whether the host is exactly as the last full
// scan that found it at image d left it.
func (s *Syncer) quickUnchanged(ctx context.Context, d images.Digest) bool {
	rec := s.quick
	if rec == nil {
		rec = &quickRecord{}
		if readJSON(s.path("quick.json"), rec) != nil {
			return false
		}
	}
	if rec.Key != s.quickKey(d) {
		return false
	}
	var now unix.Timespec
	if unix.ClockGettime(unix.CLOCK_REALTIME_COARSE, &now) != nil || now.Nano() < rec.Start {
		return false // the clock stepped back: ctimes prove nothing
	}
	td, err := s.quickWalk(ctx)
	if err != nil || !td.Sure || td.Digest != rec.Tree {
		return false
	}
	s.quick = rec
	return true
}

// quickMatches reports whether td, the digest of a full scan, is the
// record a full scan that found the host at image cur left: the host is
// exactly at cur.
func (s *Syncer) quickMatches(cur images.Digest, td TreeDigest) bool {
	rec := s.quick
	if rec == nil {
		rec = &quickRecord{}
		if readJSON(s.path("quick.json"), rec) != nil {
			return false
		}
	}
	return td.Sure && rec.Key == s.quickKey(cur) && td.Digest == rec.Tree && td.Start >= rec.Start
}

// saveQuick records that the scan that gave td found the host at d.
func (s *Syncer) saveQuick(d images.Digest, td TreeDigest) {
	if !td.Sure {
		s.dropQuick()
		return
	}
	rec := &quickRecord{Key: s.quickKey(d), Tree: td.Digest, Start: td.Start}
	if s.quick != nil && *s.quick == *rec {
		return
	}
	if writeJSON(s.path("quick.json"), rec) == nil {
		s.quick = rec
	}
}

// recordCommitted is run when a sync to d has committed and its
// after-phase triggers are done (the journal removed): it scans the host
// as the next no-change sync would, in full, and saves the record when
// the scan finds the host exactly at d. The walk of inode facts alone
// cannot say so: the scan the sync planned with is older than the
// commit, and a local change made while the sync staged, or a managed
// path an after-phase trigger wrote, would be vouched for unseen. The
// commit put what it wrote in the stat cache (saveCache), so this scan
// hashes none of it. A crash before the record is written leaves none
// (dropQuick ran before the journal): the next check is a full scan.
func (s *Syncer) recordCommitted(ctx context.Context, d images.Digest, want *images.Manifest) {
	// What the commit wrote has a ctime in the current clock tick at the
	// latest; a walk begun in that tick could not vouch for it.
	waitTick(ctx)
	host, mounts, td, err := s.scanDigest(ctx)
	if err != nil || !td.Sure {
		return
	}
	pl := plan.Make(host, want, s.planOptions(mounts))
	if len(pl.Ops) != 0 || len(pl.Refused) != 0 {
		return
	}
	if s.cache.dirty {
		s.saveStatCache()
	}
	s.saveQuick(d, td)
}

// waitTick returns once the coarse clock has moved past its reading at
// the call (a tick is 1–10 ms), or when ctx is done.
func waitTick(ctx context.Context) {
	var t0, t unix.Timespec
	if unix.ClockGettime(unix.CLOCK_REALTIME_COARSE, &t0) != nil {
		return
	}
	for ctx.Err() == nil {
		if unix.ClockGettime(unix.CLOCK_REALTIME_COARSE, &t) != nil || t.Nano() > t0.Nano() {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// dropQuick forgets the record: done before a commit changes the root.
func (s *Syncer) dropQuick() {
	s.quick = nil
	if err := os.Remove(s.path("quick.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		if s.Log != nil {
			s.Log.Warn("removing the quick-check record", "err", err)
		}
	}
}
