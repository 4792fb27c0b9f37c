package carry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/glob"
	"github.com/ingotfleet/ingot/pusher"
	"github.com/ingotfleet/ingot/pusher/agent"
)

// Report is what a carry-over did to the new slot.
type Report struct {
	Base  string `json:"base,omitempty"` // the image the booted slot was synced to
	Image string `json:"image"`
	// Carried are the local paths copied verbatim from the booted slot.
	Carried []string `json:"carried,omitempty"`
	// Etc are the /etc paths the host or both sides changed, with what
	// the merge did (paths unchanged on the host are not listed).
	Etc []Decision `json:"etc,omitempty"`
	// Conflicts are the paths changed on both sides.
	Conflicts []string `json:"conflicts,omitempty"`
	// Failed are the conflicts the policy did not resolve: the slot is
	// not switched to.
	Failed []string `json:"failed,omitempty"`
}

// ErrConflict is returned when an /etc conflict's policy is "fail" (or a
// line merge overlapped).
var ErrConflict = errors.New("slots: /etc conflicts left unresolved")

// maxEtcFile bounds a file the merge reads whole.
const maxEtcFile = 16 << 20

// Carry is one carry-over: from the booted root into a freshly synced
// slot.
type Carry struct {
	Booted, Slot *pusher.Tree
	// Base is the image the booted slot was last synced to (nil: every
	// host path counts as changed by the host); New is the slot's image.
	Base, New *images.Manifest
	// Carry are the globs of local paths copied verbatim.
	Carry []string
	// Skip: paths neither merged nor carried (never-touched paths,
	// the agent's state directory).
	Skip func(rel string) bool
	// Policy names the policy of a conflicting /etc path.
	Policy func(rel string) string
	// BaseContent returns the base image's bytes of a file (for merge-lines).
	BaseContent func(ctx context.Context, sha images.Digest, size int64) ([]byte, error)

	globs   glob.Set
	touched []string // directories written into
}

// Run merges /etc and copies the carried paths, returning what it did.
// Nothing is overwritten silently: every path the host changed is in the
// report, every conflict listed; unresolved conflicts return ErrConflict
// after the resolved paths are written (the slot is not switched to).
func (c *Carry) Run(ctx context.Context) (*Report, error) {
	rep := &Report{}
	globs, err := glob.CompileSet(c.Carry)
	if err != nil {
		return rep, err
	}
	c.globs = globs
	skip := func(p string) bool { return c.Skip != nil && c.Skip(p) || c.globs.Match(p) }
	host, err := c.readEtc(skip)
	if err != nil {
		return rep, fmt.Errorf("reading the host's /etc: %w", err)
	}
	if err := c.mergeEtc(ctx, rep, c.etcPaths(host, skip), host); err != nil {
		return rep, err
	}
	if err := c.carryLocal(rep); err != nil {
		return rep, fmt.Errorf("carrying local paths: %w", err)
	}
	// Writing into the image's directories moved their times: put the
	// image's back, so only the paths listed differ from the image.
	if c.New != nil {
		for _, p := range c.touched {
			if e := c.New.Lookup(p); e != nil && e.Type == images.TypeDir {
				if err := c.Slot.SetMtime(p, e.Mtime); err != nil {
					return rep, err
				}
			}
		}
	}
	if err := c.Slot.Sync(); err != nil {
		return rep, err
	}
	if len(rep.Failed) > 0 {
		return rep, fmt.Errorf("%w: %s", ErrConflict, strings.Join(rep.Failed, ", "))
	}
	return rep, nil
}

// readEtc reads the booted root's /etc (files with their bytes), leaving
// out what skip names.
func (c *Carry) readEtc(skip func(string) bool) (map[string]*Version, error) {
	host := map[string]*Version{}
	err := c.walk("etc", func(p string, e images.Entry) error {
		if skip(p) {
			return fs.SkipDir
		}
		v := &Version{Entry: e}
		if e.Type == images.TypeFile {
			b, err := c.Booted.ReadFile(p, maxEtcFile)
			if err != nil {
				return err
			}
			v.Content, v.Entry.SHA256 = b, images.Sum(b)
		}
		host[p] = v
		return nil
	})
	return host, err
}

// etcPaths are the /etc paths of the host, the base image and the new
// one, in manifest order.
func (c *Carry) etcPaths(host map[string]*Version, skip func(string) bool) []string {
	inEtc := func(p string) bool { return p == "etc" || strings.HasPrefix(p, "etc/") }
	paths := map[string]bool{}
	for p := range host {
		paths[p] = true
	}
	for _, m := range []*images.Manifest{c.Base, c.New} {
		if m == nil {
			continue
		}
		for i := range m.Entries {
			if p := m.Entries[i].Path; inEtc(p) && !skip(p) {
				paths[p] = true
			}
		}
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	slices.SortFunc(sorted, images.ComparePaths)
	return sorted
}

// manifestVersion is path p of manifest m (hard links resolved), nil
// when m is nil or has no p.
func manifestVersion(m *images.Manifest, p string) *Version {
	if m == nil {
		return nil
	}
	e := m.Lookup(p)
	if e == nil {
		return nil
	}
	r := m.Resolve(e)
	if r == nil {
		return nil
	}
	v := &Version{Entry: *r}
	v.Entry.Path = p
	return v
}

// mergeEtc decides every /etc path (Merge3 under its policy), writes the
// host's or the merged version into the slot, removes what the host
// removed, and reports each decision.
func (c *Carry) mergeEtc(ctx context.Context, rep *Report, paths []string, host map[string]*Version) error {
	var removes []string
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, h, n := manifestVersion(c.Base, p), host[p], manifestVersion(c.New, p)
		if c.Base == nil && h != nil && n != nil && same(h, n) {
			continue
		}
		if c.Base == nil && h == nil {
			continue // with no base, only what the host has is carried
		}
		d := c.decide(ctx, p, b, h, n)
		if d.Action == TakeImage && !d.Conflict && d.Reason == "unchanged on the host" {
			continue
		}
		rep.Etc = append(rep.Etc, d)
		if d.Conflict {
			rep.Conflicts = append(rep.Conflicts, p)
		}
		switch d.Action {
		case Fail:
			rep.Failed = append(rep.Failed, p)
		case KeepHost:
			if h == nil {
				removes = append(removes, p)
				continue
			}
			if err := c.put(p, h); err != nil {
				return err
			}
		case WriteMerged:
			c.touched = append(c.touched, images.Parent(p))
			if err := c.Slot.WriteFile(p, bytes.NewReader(d.Merged), n.Entry.Mode, n.Entry.UID, n.Entry.GID); err != nil {
				return err
			}
		}
	}
	for i := len(removes) - 1; i >= 0; i-- {
		if err := c.Slot.Remove(removes[i]); err != nil {
			return err
		}
		c.touched = append(c.touched, images.Parent(removes[i]))
	}
	return nil
}

// decide is Merge3 of path p under its policy; when a line merge is
// possible it loads the base's and the image's bytes and decides again.
func (c *Carry) decide(ctx context.Context, p string, b, h, n *Version) Decision {
	pol := c.Policy(p)
	d := Merge3(p, b, h, n, pol)
	if d.Action != WriteMerged && (!d.Conflict || pol != agent.PolicyMerge) {
		return d
	}
	if n != nil && n.Entry.Type == images.TypeFile {
		// Unreadable or not the image's bytes: no line merge (below).
		if n.Content, _ = c.Slot.ReadFile(p, maxEtcFile); images.Sum(n.Content) != n.Entry.SHA256 {
			n.Content = nil
		}
	}
	if b != nil && b.Entry.Type == images.TypeFile && c.BaseContent != nil {
		b.Content, _ = c.BaseContent(ctx, b.Entry.SHA256, b.Entry.Size)
	}
	if n != nil && n.Content == nil || b != nil && b.Entry.Type == images.TypeFile && b.Content == nil {
		return Decision{Path: p, Action: Fail, Conflict: true, Policy: pol, Reason: "changed on both; the base or image bytes could not be read for merge-lines"}
	}
	return Merge3(p, b, h, n, pol)
}

// carryLocal copies the local paths (the carry globs) verbatim.
func (c *Carry) carryLocal(rep *Report) error {
	for _, root := range c.carryRoots() {
		err := c.walk(root, func(p string, e images.Entry) error {
			if c.Skip != nil && c.Skip(p) {
				return fs.SkipDir
			}
			if !c.globs.Match(p) && !c.underCarried(p) {
				return nil // a directory on the way to a carried path
			}
			v := &Version{Entry: e}
			if err := c.put(p, v); err != nil {
				return err
			}
			rep.Carried = append(rep.Carried, p)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// underCarried reports whether a directory above p is carried.
func (c *Carry) underCarried(p string) bool {
	for q := images.Parent(p); q != "."; q = images.Parent(q) {
		if c.globs.Match(q) {
			return true
		}
	}
	return false
}

// carryRoots are the directories to walk for the carry globs: each
// glob's literal leading directories.
func (c *Carry) carryRoots() []string {
	var roots []string
	for _, g := range c.Carry {
		g = strings.Trim(g, "/")
		parts := strings.Split(g, "/")
		var lit []string
		for _, s := range parts[:len(parts)-1] {
			if strings.ContainsAny(s, "*?[") {
				break
			}
			lit = append(lit, s)
		}
		r := strings.Join(lit, "/")
		if r == "" {
			r = "."
		}
		roots = append(roots, r)
	}
	slices.Sort(roots)
	roots = slices.Compact(roots)
	// A root beneath another is walked with it.
	var out []string
	for _, r := range roots {
		if len(out) > 0 && (out[len(out)-1] == "." || strings.HasPrefix(r, out[len(out)-1]+"/")) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// put makes p in the slot as v is on the host, its parent directories
// made like the host's when the slot lacks them.
func (c *Carry) put(p string, v *Version) error {
	if err := c.parents(p); err != nil {
		return err
	}
	c.touched = append(c.touched, images.Parent(p))
	e := v.Entry
	switch e.Type {
	case images.TypeDir:
		if cur, err := c.Slot.Lstat(p); err == nil && cur.Type != images.TypeDir {
			if err := c.Slot.Remove(p); err != nil {
				return err
			}
		}
		return c.Slot.Mkdir(p, e.Mode, e.UID, e.GID)
	case images.TypeSymlink:
		return c.Slot.Symlink(p, e.Link, e.UID, e.GID)
	case images.TypeFile:
		if cur, err := c.Slot.Lstat(p); err == nil && cur.Type == images.TypeDir {
			return fmt.Errorf("carrying %s: the new slot has a directory there", p)
		}
		f, err := c.Booted.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return c.Slot.WriteFile(p, f, e.Mode, e.UID, e.GID)
	}
	return fmt.Errorf("carrying %s: a %s is not carried", p, e.Type)
}

func (c *Carry) parents(p string) error {
	var missing []string
	for q := images.Parent(p); q != "."; q = images.Parent(q) {
		if _, err := c.Slot.Lstat(q); err == nil {
			break
		}
		missing = append(missing, q)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		e, err := c.Booted.Lstat(missing[i])
		if err != nil {
			return err
		}
		if err := c.Slot.Mkdir(missing[i], e.Mode, e.UID, e.GID); err != nil {
			return err
		}
	}
	return nil
}

// walk calls fn for root and everything beneath it in the booted slot,
// in sorted order; fs.SkipDir from fn leaves a directory out. A root
// that does not exist is no error.
func (c *Carry) walk(root string, fn func(p string, e images.Entry) error) error {
	e, err := c.Booted.Lstat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return c.walkEntry(root, e, fn)
}

func (c *Carry) walkEntry(p string, e images.Entry, fn func(string, images.Entry) error) error {
	if p != "." {
		if err := fn(p, e); err != nil {
			if errors.Is(err, fs.SkipDir) {
				return nil
			}
			return err
		}
	}
	if e.Type != images.TypeDir {
		return nil
	}
	names, err := c.Booted.ReadDir(p)
	if err != nil {
		return err
	}
	for _, n := range names {
		q := n
		if p != "." {
			q = p + "/" + n
		}
		ce, err := c.Booted.Lstat(q)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := c.walkEntry(q, ce, fn); err != nil {
			return err
		}
	}
	return nil
}
