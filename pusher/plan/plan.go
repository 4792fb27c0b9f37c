package plan

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

// Options are the facts Make needs beyond the two trees.
type Options struct {
	// Local reports paths a sync never creates, changes or deletes
	// (including everything under a local directory).
	Local func(p string) bool
	// Keep reports host directories that stay even when the image does
	// not have them (those above the agent's state directory).
	Keep func(p string) bool
	// Mounts are the host paths that are mount points a sync does not cross.
	Mounts []string
}

// Make compares the host's current nodes with the wanted manifest.
// A path differs where images.DiffKeys (the rule image verify --root
// reports with) names a key: a content key (type, size, content, link
// target, device) means a put (or mkdir, link), any other an attrs op.
func Make(host []images.Node, want *images.Manifest, opts Options) *Plan {
	p := newPlanner(host, want, opts)
	for i := range want.Entries {
		e := &want.Entries[i]
		if e.Path != "." && p.skip(e.Path) {
			continue
		}
		switch e.Type {
		case images.TypeDir:
			p.dir(e)
		case images.TypeHardlink:
			p.link(e)
		default:
			p.put(e)
		}
	}
	p.findReplacedDirs()
	p.removeExtra(host)
	p.relinked(host)
	p.touchDirs()
	pl := p.pl
	slices.SortStableFunc(p.attrs, func(a, b Op) int { return images.ComparePaths(b.Path, a.Path) })
	pl.Ops = append(pl.Ops, p.attrs...)
	slices.SortFunc(pl.Changed, images.ComparePaths)
	pl.Changed = slices.Compact(pl.Changed)
	return pl
}

// planCompare is how a host entry is compared with the image's: the
// host's user and group names come from its own account files, and only
// when it manages them, so names are compared where both sides have one.
var planCompare = images.CompareOptions{NamesWhereBoth: true}

// differs compares host entry h with the wanted e: content (what only a
// put changes) and attrs (what an attrs op sets in place).
func differs(h, e *images.Entry) (content, attrs bool) {
	for _, k := range images.DiffKeys(h, e, planCompare) {
		if images.IsContentKey(k) {
			content = true
		} else {
			attrs = true
		}
	}
	return content, attrs
}

// planner is the state of one Make.
type planner struct {
	want *images.Manifest
	opts Options
	have map[string]*images.Node
	// holds: host directories with a local path or a mount point at any
	// depth below them (the scan left those out).
	holds        map[string]bool
	pl           *Plan
	replaced     map[string]bool // files whose inode a put replaces
	dirty        map[string]bool // directories whose entries change
	replacedDirs map[string]bool // directories the image replaces with something else
	attrs        []Op
}

func newPlanner(host []images.Node, want *images.Manifest, opts Options) *planner {
	p := &planner{
		want: want, opts: opts, pl: &Plan{},
		have:  make(map[string]*images.Node, len(host)),
		holds: map[string]bool{}, replaced: map[string]bool{}, dirty: map[string]bool{}, replacedDirs: map[string]bool{},
	}
	for i := range host {
		p.have[host[i].Path] = &host[i]
		if host[i].HoldsLocal {
			for q := host[i].Path; !p.holds[q]; q = images.Parent(q) {
				p.holds[q] = true
				if q == "." {
					break
				}
			}
		}
	}
	return p
}

// skip reports paths a sync leaves alone: local ones and those under a
// mount point.
func (p *planner) skip(path string) bool {
	if p.opts.Local != nil && p.opts.Local(path) {
		return true
	}
	for _, m := range p.opts.Mounts {
		if path == m || (len(path) > len(m) && path[:len(m)] == m && path[len(m)] == '/') {
			return true
		}
	}
	return false
}

// changed records that the commit creates, replaces or removes path.
func (p *planner) changed(path string) {
	p.pl.Changed = append(p.pl.Changed, path)
	p.dirty[images.Parent(path)] = true
}

// setAttrs plans an attrs op making host entry h's attributes e's.
func (p *planner) setAttrs(e *images.Entry, h *images.Node) {
	ec, old := e.Clone(), h.Entry
	p.attrs = append(p.attrs, Op{Kind: OpAttrs, Path: e.Path, Entry: &ec, Old: &old})
	if e.Path != "." {
		p.pl.Changed = append(p.pl.Changed, e.Path)
	}
}

// replacing fills in op's backup of host entry h (nil: nothing there).
func replacing(op *Op, h *images.Node) {
	if h == nil {
		return
	}
	op.Backup = stageName(op.Path, nil)
	if h.Type == images.TypeFile {
		op.OldSHA = h.SHA256
	}
}

// dir plans directory e.
func (p *planner) dir(e *images.Entry) {
	h := p.have[e.Path]
	if h != nil && h.Type == images.TypeDir {
		if _, attrs := differs(&h.Entry, e); attrs {
			p.setAttrs(e, h)
		}
		return
	}
	ec := e.Clone()
	op := Op{Kind: OpMkdir, Path: e.Path, Entry: &ec}
	replacing(&op, h)
	p.pl.Ops = append(p.pl.Ops, op)
	p.changed(e.Path)
	p.attrs = append(p.attrs, Op{Kind: OpAttrs, Path: e.Path, Entry: &ec})
}

// link plans hardlink e.
func (p *planner) link(e *images.Entry) {
	if p.skip(e.Link) {
		p.pl.Refused = append(p.pl.Refused, fmt.Sprintf("%s is a hardlink to %s, a local path of this host (or under a mount): a sync never links to what it does not manage", e.Path, e.Link))
		return
	}
	h := p.have[e.Path]
	if h != nil && h.Type == images.TypeHardlink && h.Link == e.Link && !p.replaced[e.Link] {
		return
	}
	ec := e.Clone()
	op := Op{Kind: OpLink, Path: e.Path, Entry: &ec, Stage: stageName(e.Path, e)}
	replacing(&op, h)
	p.pl.Ops = append(p.pl.Ops, op)
	p.changed(e.Path)
}

// put plans file, symlink or node e.
func (p *planner) put(e *images.Entry) {
	h := p.have[e.Path]
	if h != nil {
		content, attrs := differs(&h.Entry, e)
		if !content {
			if attrs {
				p.setAttrs(e, h)
			}
			return
		}
	}
	ec := e.Clone()
	op := Op{Kind: OpPut, Path: e.Path, Entry: &ec, Stage: stageName(e.Path, e)}
	replacing(&op, h)
	if h != nil && h.Type == images.TypeFile {
		op.DeltaFrom = h.SHA256
	}
	if e.Type == images.TypeFile {
		p.replaced[e.Path] = true
		p.pl.FetchBytes += e.Size
		p.pl.FetchFiles++
	}
	p.pl.Ops = append(p.pl.Ops, op)
	p.changed(e.Path)
}

// findReplacedDirs finds the directories the image replaces with
// something else: what they hold is removed first (children first), so
// its backups are kept file by file and the directory is empty when it
// is moved aside. One holding local paths or mount points refuses the
// plan.
func (p *planner) findReplacedDirs() {
	for _, op := range p.pl.Ops {
		if h := p.have[op.Path]; h != nil && h.Type == images.TypeDir && op.Kind != OpMkdir {
			p.replacedDirs[op.Path] = true
			if p.holds[op.Path] {
				p.pl.Refused = append(p.pl.Refused, fmt.Sprintf("the image replaces directory %s with a %s, but on this host it holds local paths or mount points, which a sync never moves or deletes", op.Path, op.Entry.Type))
			}
		}
	}
}

// underReplaced reports whether path is below a replaced directory.
func (p *planner) underReplaced(path string) bool {
	for q := images.Parent(path); q != "."; q = images.Parent(q) {
		if p.replacedDirs[q] {
			return true
		}
	}
	return false
}

// removeExtra plans the removal of what the host has and the image does
// not: under replaced directories before everything else, the rest after
// the puts, children first.
func (p *planner) removeExtra(host []images.Node) {
	var removes, early []Op
	for i := range host {
		n := &host[i]
		if n.Path == "." || p.skip(n.Path) || p.want.Lookup(n.Path) != nil || (p.opts.Keep != nil && n.Type == images.TypeDir && p.opts.Keep(n.Path)) {
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
		if len(p.replacedDirs) > 0 && p.underReplaced(n.Path) {
			early = append(early, op)
		} else {
			removes = append(removes, op)
		}
		p.changed(n.Path)
	}
	slices.Reverse(removes)
	slices.Reverse(early)
	p.pl.Ops = append(early, p.pl.Ops...)
	p.pl.Ops = append(p.pl.Ops, removes...)
}

// relinked adds to Changed the paths on both sides whose hardlink group
// differs (images.KeyHardlink): linking or unlinking one path of a group
// changes the others' inode too.
func (p *planner) relinked(host []images.Node) {
	hp := images.LinkPeers(len(host), func(i int) *images.Entry { return &host[i].Entry })
	wp := images.LinkPeers(len(p.want.Entries), func(i int) *images.Entry { return &p.want.Entries[i] })
	check := func(path string) {
		if p.have[path] != nil && p.want.Lookup(path) != nil && !p.skip(path) && !slices.Equal(hp[path], wp[path]) {
			p.pl.Changed = append(p.pl.Changed, path)
		}
	}
	for path := range hp {
		check(path)
	}
	for path := range wp {
		if _, ok := hp[path]; !ok {
			check(path)
		}
	}
}

// touchDirs gives the directories whose entries changed their attributes
// (mtime) again.
func (p *planner) touchDirs() {
	for _, op := range p.attrs {
		delete(p.dirty, op.Path)
	}
	for _, d := range slices.SortedFunc(maps.Keys(p.dirty), images.ComparePaths) {
		if e := p.want.Lookup(d); e != nil && e.Type == images.TypeDir && (d == "." || !p.skip(d)) {
			ec := e.Clone()
			op := Op{Kind: OpAttrs, Path: d, Entry: &ec}
			if h := p.have[d]; h != nil && h.Type == images.TypeDir {
				// Same attributes (else an attrs op exists): only the
				// mtime the commit moves is set back; Old undoes it.
				old := h.Entry
				op.Old = &old
			}
			p.attrs = append(p.attrs, op)
		}
	}
}

// Drift lists the paths where the host differs from the image it was last
// synced to: someone changed them by hand.
func Drift(host []images.Node, current *images.Manifest, opts Options) []string {
	if current == nil {
		return nil
	}
	pl := Make(host, current, opts)
	return pl.Changed
}
