package images

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// DeltaKind says how a path differs between two manifests.
type DeltaKind int

// The kinds of Delta.
const (
	Added   DeltaKind = iota + 1 // only in the new manifest
	Removed                      // only in the old manifest
	Changed                      // in both, with different attributes
)

var deltaKindNames = [...]string{Added: "added", Removed: "removed", Changed: "changed"}

func (k DeltaKind) String() string {
	if k < Added || k > Changed {
		return fmt.Sprintf("DeltaKind(%d)", int(k))
	}
	return deltaKindNames[k]
}

// MarshalText implements encoding.TextMarshaler ("added", "removed", "changed").
func (k DeltaKind) MarshalText() ([]byte, error) {
	if k < Added || k > Changed {
		return nil, fmt.Errorf("invalid DeltaKind %d", int(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *DeltaKind) UnmarshalText(b []byte) error {
	for i, n := range deltaKindNames {
		if i > 0 && n == string(b) {
			*k = DeltaKind(i)
			return nil
		}
	}
	return fmt.Errorf("unknown delta kind %q", b)
}

// The keys of a Delta, mtree's keyword names where mtree has one. Xattrs
// are "xattr.NAME"; KeyHardlink means the set of paths that share the
// path's inode changed.
const (
	KeyType     = "type"
	KeyMode     = "mode"
	KeyUID      = "uid"
	KeyGID      = "gid"
	KeyUname    = "uname"
	KeyGname    = "gname"
	KeySize     = "size"
	KeySHA256   = "sha256digest"
	KeyLink     = "link"
	KeyDevice   = "device"
	KeyTime     = "time"
	KeyXattr    = "xattr." // prefix
	KeyHardlink = "hardlink"
)

// Delta is one path that differs between two manifests.
//
// Old and New are the path's attributes on each side (nil for the side
// that lacks it), copies the caller may keep. For a hardlink they are the
// attributes of the file it shares, with Path set to the delta's path and
// Type TypeFile: Compare looks through hardlinks, so a change of the
// shared inode shows at every one of its paths. OldLinks and NewLinks list
// the other paths of the path's hardlink group on each side, sorted, nil
// when it has none. Keys, for Changed, names what changed in a fixed order
// (KeyType, KeyMode, …, KeyTime, xattrs by name, KeyHardlink).
type Delta struct {
	Kind     DeltaKind
	Path     string
	Old, New *Entry
	Keys     []string
	OldLinks []string
	NewLinks []string
}

// CompareOptions tunes Compare.
type CompareOptions struct {
	// IgnoreMtime leaves mtimes out of the comparison.
	IgnoreMtime bool
	// NamesWhereBoth compares user and group names only where both
	// entries carry one: the agent's view of a host, whose names come
	// from its own account files only when it manages them.
	NamesWhereBoth bool
	// Exclude leaves out paths for which it returns true (on both sides).
	Exclude func(path string) bool
}

// Compare lists every path that differs between a (old) and b (new),
// sorted by path. Both manifests must be valid (sorted, hardlinks to
// earlier files). The result depends only on the inputs.
func Compare(a, b *Manifest, opts CompareOptions) []Delta {
	ga, gb := linkGroups(a), linkGroups(b)
	var out []Delta
	i, j := 0, 0
	for i < len(a.Entries) || j < len(b.Entries) {
		var c int
		switch {
		case i == len(a.Entries):
			c = 1
		case j == len(b.Entries):
			c = -1
		default:
			c = ComparePaths(a.Entries[i].Path, b.Entries[j].Path)
		}
		var ea, eb *Entry
		if c <= 0 {
			ea = &a.Entries[i]
			i++
		}
		if c >= 0 {
			eb = &b.Entries[j]
			j++
		}
		p := pick(ea, eb).Path
		if opts.Exclude != nil && opts.Exclude(p) {
			continue
		}
		d := Delta{Path: p}
		if ea != nil {
			d.Old = resolved(a, ea)
			d.OldLinks = ga.others(a, ea)
		}
		if eb != nil {
			d.New = resolved(b, eb)
			d.NewLinks = gb.others(b, eb)
		}
		switch {
		case ea == nil:
			d.Kind = Added
		case eb == nil:
			d.Kind = Removed
		default:
			d.Keys = DiffKeys(d.Old, d.New, opts)
			if !slices.Equal(d.OldLinks, d.NewLinks) {
				d.Keys = append(d.Keys, KeyHardlink)
			}
			if len(d.Keys) == 0 {
				continue
			}
			d.Kind = Changed
		}
		out = append(out, d)
	}
	return out
}

func pick(a, b *Entry) *Entry {
	if a != nil {
		return a
	}
	return b
}

// resolved is a copy of e's attributes: the file's for a hardlink, with
// e's path.
func resolved(m *Manifest, e *Entry) *Entry {
	r := m.Resolve(e)
	if r == nil { // invalid manifest: show the link as it is
		r = e
	}
	c := r.Clone()
	c.Path = e.Path
	return &c
}

// groups maps the file of every hardlink group to all the group's paths,
// in manifest order.
type groups map[string][]string

func linkGroups(m *Manifest) groups {
	g := groups{}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Type == TypeHardlink {
			if g[e.Link] == nil {
				g[e.Link] = []string{e.Link}
			}
			g[e.Link] = append(g[e.Link], e.Path)
		}
	}
	return g
}

// LinkPeers maps every path of a hardlink group among n entries (in
// manifest order, entry(i) the i-th) to the group's other paths, sorted:
// what KeyHardlink compares. Paths in no group are not in the map.
func LinkPeers(n int, entry func(i int) *Entry) map[string][]string {
	g := groups{}
	for i := range n {
		if e := entry(i); e.Type == TypeHardlink {
			if g[e.Link] == nil {
				g[e.Link] = []string{e.Link}
			}
			g[e.Link] = append(g[e.Link], e.Path)
		}
	}
	peers := map[string][]string{}
	for _, all := range g {
		for _, p := range all {
			o := make([]string, 0, len(all)-1)
			for _, q := range all {
				if q != p {
					o = append(o, q)
				}
			}
			slices.SortFunc(o, ComparePaths)
			peers[p] = o
		}
	}
	return peers
}

// others lists the other paths sharing e's inode, nil if none.
func (g groups) others(m *Manifest, e *Entry) []string {
	f := e.Path
	if e.Type == TypeHardlink {
		f = e.Link
	}
	all := g[f]
	if len(all) == 0 {
		return nil
	}
	o := make([]string, 0, len(all)-1)
	for _, p := range all {
		if p != e.Path {
			o = append(o, p)
		}
	}
	return o
}

// DiffKeys names the attributes that differ between a and b, in Compare's
// fixed order: the one rule for "these two entries differ", which both
// Compare (image verify --root) and the agent's plan use. A symlink's mode
// is never compared (Linux gives every symlink 0777 and cannot change
// it). Hardlink groups are not entries' attributes: Compare adds
// KeyHardlink itself.
func DiffKeys(a, b *Entry, opts CompareOptions) []string {
	var k []string
	add := func(differ bool, key string) {
		if differ {
			k = append(k, key)
		}
	}
	add(a.Type != b.Type, KeyType)
	add(a.Mode != b.Mode && !(a.Type == TypeSymlink && b.Type == TypeSymlink), KeyMode)
	add(a.UID != b.UID, KeyUID)
	add(a.GID != b.GID, KeyGID)
	add(a.Uname != b.Uname && !(opts.NamesWhereBoth && (a.Uname == "" || b.Uname == "")), KeyUname)
	add(a.Gname != b.Gname && !(opts.NamesWhereBoth && (a.Gname == "" || b.Gname == "")), KeyGname)
	add(a.Size != b.Size, KeySize)
	add(a.SHA256 != b.SHA256, KeySHA256)
	add(a.Link != b.Link, KeyLink)
	add(a.DevMajor != b.DevMajor || a.DevMinor != b.DevMinor, KeyDevice)
	add(!opts.IgnoreMtime && a.Mtime != b.Mtime, KeyTime)
	if len(a.Xattrs) == 0 && len(b.Xattrs) == 0 || maps.Equal(a.Xattrs, b.Xattrs) {
		return k
	}
	names := slices.Sorted(maps.Keys(a.Xattrs))
	for n := range b.Xattrs {
		if _, ok := a.Xattrs[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		va, oka := a.Xattrs[n]
		vb, okb := b.Xattrs[n]
		add(oka != okb || va != vb, KeyXattr+n)
	}
	return k
}

// IsContentKey reports whether key k is about what a path holds (its
// type, size, content, link target, device numbers) rather than its
// attributes (mode, owner, mtime, xattrs), which can be set in place.
func IsContentKey(k string) bool {
	switch k {
	case KeyType, KeySize, KeySHA256, KeyLink, KeyDevice:
		return true
	}
	return false
}

// entryJSON is the JSON form of an Entry: the manifest's keyword names,
// mode in octal, content hash in hex, xattr values in base64 (they are
// bytes, not text), empty attributes left out.
type entryJSON struct {
	Path   string            `json:"path"`
	Type   string            `json:"type"`
	Mode   string            `json:"mode,omitempty"`
	UID    *int              `json:"uid,omitempty"`
	GID    *int              `json:"gid,omitempty"`
	Uname  string            `json:"uname,omitempty"`
	Gname  string            `json:"gname,omitempty"`
	Size   *int64            `json:"size,omitempty"`
	SHA256 string            `json:"sha256digest,omitempty"`
	Link   string            `json:"link,omitempty"`
	Device string            `json:"device,omitempty"`
	Time   *int64            `json:"time,omitempty"`
	Xattrs map[string]string `json:"xattrs,omitempty"`
}

// MarshalJSON implements json.Marshaler; see entryJSON.
func (e Entry) MarshalJSON() ([]byte, error) {
	j := entryJSON{Path: e.Path, Type: e.Type.String(), Link: e.Link}
	if e.Type != TypeHardlink {
		j.Mode = string(appendMode(nil, e.Mode))
		j.UID, j.GID, j.Time = &e.UID, &e.GID, &e.Mtime
		j.Uname, j.Gname = e.Uname, e.Gname
	}
	if e.Type == TypeFile {
		j.Size = &e.Size
		j.SHA256 = e.SHA256.String()
	}
	if e.IsDevice() {
		j.Device = fmt.Sprintf("%d,%d", e.DevMajor, e.DevMinor)
	}
	if len(e.Xattrs) > 0 {
		j.Xattrs = make(map[string]string, len(e.Xattrs))
		for k, v := range e.Xattrs {
			j.Xattrs[k] = base64.StdEncoding.EncodeToString([]byte(v))
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON implements json.Unmarshaler, the inverse of MarshalJSON.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var j entryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	t, err := ParseType(j.Type)
	if err != nil {
		return err
	}
	n := Entry{Path: j.Path, Type: t, Link: j.Link, Uname: j.Uname, Gname: j.Gname}
	if j.Mode != "" {
		m, err := strconv.ParseUint(j.Mode, 8, 32)
		if err != nil {
			return fmt.Errorf("mode %q: %w", j.Mode, err)
		}
		n.Mode = uint32(m)
	}
	if j.UID != nil {
		n.UID = *j.UID
	}
	if j.GID != nil {
		n.GID = *j.GID
	}
	if j.Size != nil {
		n.Size = *j.Size
	}
	if j.Time != nil {
		n.Mtime = *j.Time
	}
	if j.SHA256 != "" {
		if n.SHA256, err = ParseDigest(j.SHA256); err != nil {
			return err
		}
	}
	if j.Device != "" {
		if _, err := fmt.Sscanf(j.Device, "%d,%d", &n.DevMajor, &n.DevMinor); err != nil {
			return fmt.Errorf("device %q: %w", j.Device, err)
		}
	}
	for k, v := range j.Xattrs {
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return fmt.Errorf("xattr %q: %w", k, err)
		}
		if n.Xattrs == nil {
			n.Xattrs = map[string]string{}
		}
		n.Xattrs[k] = string(raw)
	}
	*e = n
	return nil
}

// deltaJSON is the JSON form of a Delta.
type deltaJSON struct {
	Kind     DeltaKind `json:"kind"`
	Path     string    `json:"path"`
	Old      *Entry    `json:"old,omitempty"`
	New      *Entry    `json:"new,omitempty"`
	Keys     []string  `json:"keys,omitempty"`
	OldLinks []string  `json:"old_links,omitempty"`
	NewLinks []string  `json:"new_links,omitempty"`
}

// MarshalJSON implements json.Marshaler:
// {"kind":"changed","path":"usr/bin/x","old":{…},"new":{…},"keys":["mode"]}.
func (d Delta) MarshalJSON() ([]byte, error) {
	return json.Marshal(deltaJSON(d))
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Delta) UnmarshalJSON(b []byte) error {
	var j deltaJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*d = Delta(j)
	return nil
}
