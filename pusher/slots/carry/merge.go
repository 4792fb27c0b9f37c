package carry

import (
	"bytes"
	"fmt"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/pusher/agent"
)

// Version is one side of a three-way merge of a path: nil when the path
// is absent on that side. Content is needed only for the merge-lines
// policy (regular files).
type Version struct {
	Entry   images.Entry
	Content []byte
}

// Action is what the merge does to the new slot's path.
type Action string

// The actions.
const (
	// TakeImage leaves the new image's version (or its absence).
	TakeImage Action = "take-image"
	// KeepHost puts the host's version (or removes the path when the
	// host removed it).
	KeepHost Action = "keep-host"
	// WriteMerged writes Merged: the lines both sides changed, combined.
	WriteMerged Action = "merged"
	// Fail stops the slot sync: a conflict no policy resolves.
	Fail Action = "fail"
)

// Decision is the outcome of Merge3 for one path.
type Decision struct {
	Path     string `json:"path"`
	Action   Action `json:"action"`
	Conflict bool   `json:"conflict,omitempty"` // changed by both host and image
	Policy   string `json:"policy,omitempty"`   // applied to a conflict
	Reason   string `json:"reason"`
	Merged   []byte `json:"-"`
}

// same reports whether two versions are the same file as the merge sees
// it: type, permissions, owner and content or link target (times and
// names of owners left out).
func same(a, b *Version) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	x, y := a.Entry, b.Entry
	if x.Type != y.Type || x.Mode != y.Mode || x.UID != y.UID || x.GID != y.GID {
		return false
	}
	switch x.Type {
	case images.TypeFile:
		return x.SHA256 == y.SHA256
	case images.TypeSymlink:
		return x.Link == y.Link
	case images.TypeChar, images.TypeBlock:
		return x.DevMajor == y.DevMajor && x.DevMinor == y.DevMinor
	}
	return true
}

// Merge3 decides one path from base (the image the booted slot was last
// synced to), host (the booted slot's live version) and image (the new
// image's): changed by the host only → keep the host's; by the image
// only (or by neither) → take the image's; by both the same way → take
// the image's; by both differently → a conflict, settled by policy:
// keep-host, take-image, merge-lines (a line merge of regular files whose
// changes do not overlap; otherwise Fail) or fail.
func Merge3(path string, base, host, image *Version, policy string) Decision {
	d := Decision{Path: path}
	switch {
	case same(host, base):
		d.Action, d.Reason = TakeImage, "unchanged on the host"
		return d
	case same(image, base):
		d.Action, d.Reason = KeepHost, "changed on the host only"
		return d
	case same(host, image):
		d.Action, d.Reason = TakeImage, "host and image made the same change"
		return d
	}
	d.Conflict, d.Policy = true, policy
	switch policy {
	case agent.PolicyKeepHost:
		d.Action, d.Reason = KeepHost, "changed on both; policy keeps the host's"
	case agent.PolicyTakeImage:
		d.Action, d.Reason = TakeImage, "changed on both; policy takes the image's"
	case agent.PolicyMerge:
		if host == nil || image == nil || host.Entry.Type != images.TypeFile || image.Entry.Type != images.TypeFile ||
			base != nil && base.Entry.Type != images.TypeFile {
			d.Action, d.Reason = Fail, "changed on both; merge-lines needs a regular file on every side"
			return d
		}
		var b []byte
		if base != nil {
			b = base.Content
		}
		m, err := MergeLines(b, host.Content, image.Content)
		if err != nil {
			d.Action, d.Reason = Fail, "changed on both; "+err.Error()
			return d
		}
		if host.Entry.Mode != image.Entry.Mode || host.Entry.UID != image.Entry.UID || host.Entry.GID != image.Entry.GID {
			d.Reason = "changed on both; lines merged (the image's mode and owner)"
		} else {
			d.Reason = "changed on both; lines merged"
		}
		d.Action, d.Merged = WriteMerged, m
	default:
		d.Action, d.Reason = Fail, "changed on both; policy fails"
	}
	return d
}

// ErrLinesOverlap is returned by MergeLines when both sides changed the
// same lines differently.
var ErrLinesOverlap = fmt.Errorf("both sides changed the same lines")

// maxMergeLines bounds the files MergeLines takes (its diff is quadratic).
const maxMergeLines = 20000

// MergeLines merges two edits of base line by line (diff3): each side's
// changes are hunks of base lines replaced; hunks of the two sides that
// touch or overlap must be identical, else ErrLinesOverlap.
func MergeLines(base, ours, theirs []byte) ([]byte, error) {
	b, o, t := splitLines(base), splitLines(ours), splitLines(theirs)
	if len(b) > maxMergeLines || len(o) > maxMergeLines || len(t) > maxMergeLines {
		return nil, fmt.Errorf("more than %d lines to merge", maxMergeLines)
	}
	ho, ht := hunks(b, o), hunks(b, t)
	var out [][]byte
	pos := 0 // next base line to copy
	i, j := 0, 0
	for i < len(ho) || j < len(ht) {
		var h hunk
		switch {
		case j == len(ht) || i < len(ho) && ho[i].end < ht[j].start:
			h = ho[i]
			i++
		case i == len(ho) || ht[j].end < ho[i].start:
			h = ht[j]
			j++
		default:
			// They touch or overlap: only identical changes merge.
			if ho[i].start != ht[j].start || ho[i].end != ht[j].end || !equalLines(ho[i].lines, ht[j].lines) {
				return nil, fmt.Errorf("%w (near line %d)", ErrLinesOverlap, min(ho[i].start, ht[j].start)+1)
			}
			h = ho[i]
			i++
			j++
		}
		// Hunks that only touch (one ends where the other starts) took
		// the default case above: adjacent edits conflict, as in diff3.
		out = append(out, b[pos:h.start]...)
		out = append(out, h.lines...)
		pos = h.end
	}
	out = append(out, b[pos:]...)
	return bytes.Join(out, nil), nil
}

// hunk replaces base lines [start, end) with lines.
type hunk struct {
	start, end int
	lines      [][]byte
}

func splitLines(b []byte) [][]byte {
	var ls [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			ls = append(ls, b)
			break
		}
		ls = append(ls, b[:i+1])
		b = b[i+1:]
	}
	return ls
}

func equalLines(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// hunks diffs base against x (longest common subsequence) into the
// base ranges x replaced.
func hunks(base, x [][]byte) []hunk {
	n, m := len(base), len(x)
	// lcs[i][j]: the LCS length of base[i:] and x[j:].
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if bytes.Equal(base[i], x[j]) {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var hs []hunk
	var cur *hunk
	i, j := 0, 0
	flush := func() {
		if cur != nil {
			cur.end = i
			hs = append(hs, *cur)
			cur = nil
		}
	}
	for i < n || j < m {
		if i < n && j < m && bytes.Equal(base[i], x[j]) {
			flush()
			i++
			j++
			continue
		}
		if cur == nil {
			cur = &hunk{start: i}
		}
		if j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]) {
			cur.lines = append(cur.lines, x[j])
			j++
		} else {
			i++
		}
	}
	flush()
	return hs
}
