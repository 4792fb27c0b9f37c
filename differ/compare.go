package differ

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"

	"github.com/ingotfleet/ingot/images"
)

// This file is the adapter for images.Compare (branch images-tar), which is
// not on main yet: the same names and shape as that branch's documented API,
// so that swapping means deleting this file and aliasing the names.

// DeltaKind says whether a path was added, removed or changed.
type DeltaKind int

// The kinds of Delta.
const (
	Added DeltaKind = iota + 1
	Removed
	Changed
)

var deltaKindNames = [...]string{Added: "added", Removed: "removed", Changed: "changed"}

func (k DeltaKind) String() string {
	if k <= 0 || int(k) >= len(deltaKindNames) {
		return "DeltaKind(" + strconv.Itoa(int(k)) + ")"
	}
	return deltaKindNames[k]
}

// MarshalText spells the kind as a word in JSON.
func (k DeltaKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Delta is one path that differs between two manifests. Old is nil for an
// added path, New for a removed one. Keys names the attributes that changed,
// with manifest keyword names ("type", "mode", "uid", "gid", "uname",
// "gname", "size", "sha256digest", "link", "device", "time", "xattr.NAME")
// and "hardlink" when the path joined, left or changed hardlink group.
// Attributes of a hardlink are compared on the file it links to.
type Delta struct {
	Kind     DeltaKind
	Path     string
	Old, New *images.Entry
	Keys     []string
}

// CompareOptions tune Compare.
type CompareOptions struct {
	IgnoreMtime bool                   // leave "time" out of Keys (a path whose only change is its mtime is then equal)
	Exclude     func(path string) bool // paths to leave out entirely
}

// Compare lists the paths that differ between a and b, sorted by path.
func Compare(a, b *images.Manifest, opts CompareOptions) []Delta {
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
			c = images.ComparePaths(a.Entries[i].Path, b.Entries[j].Path)
		}
		var d Delta
		switch {
		case c < 0:
			d = Delta{Kind: Removed, Path: a.Entries[i].Path, Old: &a.Entries[i]}
			i++
		case c > 0:
			d = Delta{Kind: Added, Path: b.Entries[j].Path, New: &b.Entries[j]}
			j++
		default:
			ea, eb := &a.Entries[i], &b.Entries[j]
			i++
			j++
			keys := changedKeys(a, b, ea, eb, opts.IgnoreMtime)
			if len(keys) == 0 {
				continue
			}
			d = Delta{Kind: Changed, Path: ea.Path, Old: ea, New: eb, Keys: keys}
		}
		if opts.Exclude != nil && opts.Exclude(d.Path) {
			continue
		}
		out = append(out, d)
	}
	return out
}

// changedKeys compares two entries of the same path, hardlinks through the
// files they link to.
func changedKeys(a, b *images.Manifest, ea, eb *images.Entry, ignoreMtime bool) []string {
	var keys []string
	if group(ea) != group(eb) {
		keys = append(keys, "hardlink")
	}
	ra, rb := a.Resolve(ea), b.Resolve(eb)
	if ra == nil || rb == nil { // an invalid manifest; Validate refuses it
		if ra != rb {
			keys = append(keys, "type")
		}
		return keys
	}
	add := func(k string, changed bool) {
		if changed {
			keys = append(keys, k)
		}
	}
	add("type", ra.Type != rb.Type)
	add("mode", ra.Mode != rb.Mode)
	add("uid", ra.UID != rb.UID)
	add("gid", ra.GID != rb.GID)
	add("uname", ra.Uname != rb.Uname)
	add("gname", ra.Gname != rb.Gname)
	add("size", ra.Size != rb.Size)
	add("sha256digest", ra.SHA256 != rb.SHA256)
	add("link", ra.Type == rb.Type && ra.Type == images.TypeSymlink && ra.Link != rb.Link)
	add("device", ra.DevMajor != rb.DevMajor || ra.DevMinor != rb.DevMinor)
	add("time", !ignoreMtime && ra.Mtime != rb.Mtime)
	names := slices.Sorted(maps.Keys(ra.Xattrs))
	for n := range rb.Xattrs {
		if _, ok := ra.Xattrs[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		va, oka := ra.Xattrs[n]
		vb, okb := rb.Xattrs[n]
		add("xattr."+n, oka != okb || va != vb)
	}
	return keys
}

// group names the hardlink group of an entry: the path of the file that
// holds its content, or "" for a path that is not a regular file.
func group(e *images.Entry) string {
	switch e.Type {
	case images.TypeHardlink:
		return e.Link
	case images.TypeFile:
		return e.Path
	}
	return ""
}

// MarshalJSON writes a Delta as {"kind","path","old","new","keys"} with the
// entries in manifest text form.
func (d Delta) MarshalJSON() ([]byte, error) {
	line := func(e *images.Entry) *string {
		if e == nil {
			return nil
		}
		m := images.Manifest{Entries: []images.Entry{*e}}
		b := bytes.TrimPrefix(m.Bytes(), []byte(images.ManifestHeader+"\n"))
		s := string(bytes.TrimSuffix(b, []byte("\n")))
		return &s
	}
	return json.Marshal(struct {
		Kind DeltaKind `json:"kind"`
		Path string    `json:"path"`
		Old  *string   `json:"old,omitempty"`
		New  *string   `json:"new,omitempty"`
		Keys []string  `json:"keys,omitempty"`
	}{d.Kind, d.Path, line(d.Old), line(d.New), d.Keys})
}
