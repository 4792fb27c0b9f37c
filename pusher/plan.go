package pusher

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	"github.com/ingotfleet/ingot/images"
)

// OpKind is what one step of a commit does.
type OpKind string

// The kinds of op, in the order a commit runs them: mkdir, put and link in
// manifest order (parents first), remove in reverse order (children
// first), attrs in reverse order (so a directory's mtime is set after its
// children are in place).
const (
	OpMkdir  OpKind = "mkdir"  // make a directory (moving aside a non-directory in the way)
	OpPut    OpKind = "put"    // rename a staged file, symlink or node into place
	OpLink   OpKind = "link"   // make a hardlink to an earlier file
	OpRemove OpKind = "remove" // move a path the image no longer has aside (rmdir for directories)
	OpAttrs  OpKind = "attrs"  // set owner, mode, xattrs and mtime in place
)

// Op is one step of a commit. Every op can be run again after a crash
// and ends in the same state.
type Op struct {
	Kind   OpKind        `json:"kind"`
	Path   string        `json:"path"`
	Stage  string        `json:"stage,omitempty"`  // put: name of the staged file
	Backup string        `json:"backup,omitempty"` // where what is replaced or removed goes
	Entry  *images.Entry `json:"entry,omitempty"`  // mkdir, put, link, attrs: the wanted entry
	OldSHA images.Digest `json:"old_sha,omitempty"`
	// Old is what an attrs or remove op's path has before the commit
	// (nil: unknown or new), so only what differs is changed and a failed
	// commit can be undone.
	Old *images.Entry `json:"old,omitempty"`
	// DeltaFrom is the content hash of the host's current version of a
	// put file, when it is a regular file: the store may have a delta.
	DeltaFrom images.Digest `json:"-"`
}

// Plan is what a sync must do.
type Plan struct {
	Ops []Op
	// Changed lists every path the commit creates, changes or removes,
	// sorted: what triggers match against.
	Changed []string
	// Fetch is the total size of the files to stage.
	FetchBytes int64
	FetchFiles int
	// Refused lists why the image cannot be synced to this host: it would
	// move, replace or delete a directory holding local paths, or
	// hardlink to a local path. A sync refuses such a plan whole.
	Refused []string
}

// stageName names the staged (and backup) file of path p holding content
// sha; stable across restarts so staging resumes.
func stageName(p string, e *images.Entry) string {
	h := sha256.New()
	h.Write([]byte(p))
	h.Write([]byte{0})
	if e != nil {
		h.Write(e.SHA256[:])
		h.Write([]byte(e.Link))
		h.Write([]byte{byte(e.Type)})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// PlanOptions are the facts MakePlan needs beyond the two trees.
type PlanOptions struct {
	// Local reports paths a sync never creates, changes or deletes
	// (including everything under a local directory).
	Local func(p string) bool
	// Keep reports host directories that stay even when the image does
	// not have them (those above the agent's state directory).
	Keep func(p string) bool
	// Mounts are the host paths that are mount points a sync does not cross.
	Mounts []string
}

// MakePlan compares the host's current nodes with the wanted manifest.
func MakePlan(host []Node, want *images.Manifest, opts PlanOptions) *Plan {
	have := make(map[string]*Node, len(host))
	// holds: host directories with a local path or a mount point at any
	// depth below them (the scan left those out).
	holds := map[string]bool{}
	for i := range host {
		have[host[i].Path] = &host[i]
		if host[i].HoldsLocal {
			for p := host[i].Path; !holds[p]; p = images.Parent(p) {
				holds[p] = true
				if p == "." {
					break
				}
			}
		}
	}
	skip := func(p string) bool {
		if opts.Local != nil && opts.Local(p) {
			return true
		}
		for _, m := range opts.Mounts {
			if p == m || (len(p) > len(m) && p[:len(m)] == m && p[len(m)] == '/') {
				return true
			}
		}
		return false
	}
	pl := &Plan{}
	replaced := map[string]bool{} // files whose inode a put replaces
	dirty := map[string]bool{}    // directories whose entries change
	changed := func(p string) {
		pl.Changed = append(pl.Changed, p)
		dirty[images.Parent(p)] = true
	}
	var attrs []Op
	for i := range want.Entries {
		e := &want.Entries[i]
		if e.Path != "." && skip(e.Path) {
			continue
		}
		h := have[e.Path]
		ec := e.Clone()
		switch e.Type {
		case images.TypeDir:
			if h == nil || h.Type != images.TypeDir {
				op := Op{Kind: OpMkdir, Path: e.Path, Entry: &ec}
				if h != nil {
					op.Backup = stageName(e.Path, nil)
					if h.Type == images.TypeFile {
						op.OldSHA = h.SHA256
					}
				}
				pl.Ops = append(pl.Ops, op)
				changed(e.Path)
				attrs = append(attrs, Op{Kind: OpAttrs, Path: e.Path, Entry: &ec})
				continue
			}
			if !sameAttrs(&h.Entry, e) {
				old := h.Entry
				attrs = append(attrs, Op{Kind: OpAttrs, Path: e.Path, Entry: &ec, Old: &old})
				if e.Path != "." {
					pl.Changed = append(pl.Changed, e.Path)
				}
			}
		case images.TypeHardlink:
			if skip(e.Link) {
				pl.Refused = append(pl.Refused, fmt.Sprintf("%s is a hardlink to %s, a local path of this host (or under a mount): a sync never links to what it does not manage", e.Path, e.Link))
				continue
			}
			if h != nil && h.Type == images.TypeHardlink && h.Link == e.Link && !replaced[e.Link] {
				continue
			}
			op := Op{Kind: OpLink, Path: e.Path, Entry: &ec, Stage: stageName(e.Path, e)}
			if h != nil {
				op.Backup = stageName(e.Path, nil)
				if h.Type == images.TypeFile {
					op.OldSHA = h.SHA256
				}
			}
			pl.Ops = append(pl.Ops, op)
			changed(e.Path)
		default:
			if h != nil && sameContent(&h.Entry, e) {
				if !sameAttrs(&h.Entry, e) {
					old := h.Entry
					attrs = append(attrs, Op{Kind: OpAttrs, Path: e.Path, Entry: &ec, Old: &old})
					pl.Changed = append(pl.Changed, e.Path)
				}
				continue
			}
			op := Op{Kind: OpPut, Path: e.Path, Entry: &ec, Stage: stageName(e.Path, e)}
			if h != nil {
				op.Backup = stageName(e.Path, nil)
				if h.Type == images.TypeFile {
					op.OldSHA = h.SHA256
					op.DeltaFrom = h.SHA256
				}
			}
			if e.Type == images.TypeFile {
				replaced[e.Path] = true
				pl.FetchBytes += e.Size
				pl.FetchFiles++
			}
			pl.Ops = append(pl.Ops, op)
			changed(e.Path)
		}
	}
	// Directories the image replaces with something else: what they hold
	// is removed first (children first), so its backups are kept file by
	// file and the directory is empty when it is moved aside.
	replacedDirs := map[string]bool{}
	for _, op := range pl.Ops {
		if h := have[op.Path]; h != nil && h.Type == images.TypeDir && op.Kind != OpMkdir {
			replacedDirs[op.Path] = true
			if holds[op.Path] {
				pl.Refused = append(pl.Refused, fmt.Sprintf("the image replaces directory %s with a %s, but on this host it holds local paths or mount points, which a sync never moves or deletes", op.Path, op.Entry.Type))
			}
		}
	}
	under := func(p string) bool {
		for q := images.Parent(p); q != "."; q = images.Parent(q) {
			if replacedDirs[q] {
				return true
			}
		}
		return false
	}
	// What the host has and the image does not.
	var removes, early []Op
	for i := range host {
		n := &host[i]
		if n.Path == "." || skip(n.Path) || want.Lookup(n.Path) != nil || (opts.Keep != nil && n.Type == images.TypeDir && opts.Keep(n.Path)) {
			continue
		}
		op := Op{Kind: OpRemove, Path: n.Path, Backup: stageName(n.Path, nil)}
		if n.Type == images.TypeFile {
			op.OldSHA = n.SHA256
		}
		if n.Type == images.TypeDir {
			old := n.Entry
			op.Old = &old
		}
		if len(replacedDirs) > 0 && under(n.Path) {
			early = append(early, op)
		} else {
			removes = append(removes, op)
		}
		changed(n.Path)
	}
	slices.Reverse(removes)
	slices.Reverse(early)
	pl.Ops = append(early, pl.Ops...)
	pl.Ops = append(pl.Ops, removes...)
	// Directories whose entries changed get their attributes (mtime) set again.
	for _, op := range attrs {
		delete(dirty, op.Path)
	}
	for _, p := range slices.SortedFunc(maps.Keys(dirty), images.ComparePaths) {
		if e := want.Lookup(p); e != nil && e.Type == images.TypeDir && (p == "." || !skip(p)) {
			ec := e.Clone()
			op := Op{Kind: OpAttrs, Path: p, Entry: &ec}
			if h := have[p]; h != nil && h.Type == images.TypeDir {
				// Same attributes (else an attrs op exists): only the
				// mtime the commit moves is set back; Old undoes it.
				old := h.Entry
				op.Old = &old
			}
			attrs = append(attrs, op)
		}
	}
	slices.SortStableFunc(attrs, func(a, b Op) int { return images.ComparePaths(b.Path, a.Path) })
	pl.Ops = append(pl.Ops, attrs...)
	slices.SortFunc(pl.Changed, images.ComparePaths)
	pl.Changed = slices.Compact(pl.Changed)
	return pl
}

// sameContent reports whether host entry h holds what e wants, ignoring
// owner, mode, xattrs and mtime.
func sameContent(h, e *images.Entry) bool {
	if h.Type != e.Type {
		return false
	}
	switch e.Type {
	case images.TypeFile:
		return h.Size == e.Size && h.SHA256 == e.SHA256
	case images.TypeSymlink:
		return h.Link == e.Link
	case images.TypeChar, images.TypeBlock:
		return h.DevMajor == e.DevMajor && h.DevMinor == e.DevMinor
	}
	return true
}

// sameAttrs compares what OpAttrs sets. User and group names are not
// compared: the host's files carry numeric ids.
func sameAttrs(h, e *images.Entry) bool {
	if h.UID != e.UID || h.GID != e.GID || !maps.Equal(h.Xattrs, e.Xattrs) || h.Mtime != e.Mtime {
		return false
	}
	if e.Type == images.TypeSymlink {
		return true // a symlink's mode means nothing on Linux
	}
	return h.Mode == e.Mode
}

// Drift lists the paths where the host differs from the image it was last
// synced to: someone changed them by hand.
func Drift(host []Node, current *images.Manifest, opts PlanOptions) []string {
	if current == nil {
		return nil
	}
	pl := MakePlan(host, current, opts)
	return pl.Changed
}
