package images

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ManifestHeader is the first line of every manifest in ingot's own format.
// mtree reads it as a comment. docs/images.md keeps the changelog of the
// versions.
const ManifestHeader = "#ingot manifest v2"

// manifestHeaderV1 is the header of the first version, which ParseManifest
// still reads: entries sorted by whole-path bytes and '=' not escaped.
const manifestHeaderV1 = "#ingot manifest v1"

// maxLine bounds one manifest line (a path plus large xattrs).
const maxLine = 1 << 20

// Format is a textual form of a manifest.
type Format int

const (
	// FormatIngot is the canonical form: the image digest is the sha256 of it.
	FormatIngot Format = iota
	// FormatMtree is strict mtree, as NetBSD `mtree -f spec -p root` and
	// bsdtar read it: numeric owners only (names depend on the host that
	// checks), hardlinks written as the files they share, no xattrs.
	FormatMtree
)

// ParseFormat reads a --format value: "ingot" or "mtree".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "ingot", "":
		return FormatIngot, nil
	case "mtree":
		return FormatMtree, nil
	}
	return 0, fmt.Errorf("unknown manifest format %q (want ingot or mtree)", s)
}

// Manifest is the list of every path of an image, sorted by ComparePaths.
type Manifest struct {
	Entries []Entry
}

// NewManifest sorts entries and validates the result.
func NewManifest(entries []Entry) (*Manifest, error) {
	m := &Manifest{Entries: entries}
	m.Sort()
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Sort puts the entries in manifest order.
func (m *Manifest) Sort() {
	slices.SortStableFunc(m.Entries, func(a, b Entry) int { return ComparePaths(a.Path, b.Path) })
}

// Lookup returns the entry at path p, or nil.
func (m *Manifest) Lookup(p string) *Entry {
	i := sort.Search(len(m.Entries), func(i int) bool { return ComparePaths(m.Entries[i].Path, p) >= 0 })
	if i < len(m.Entries) && m.Entries[i].Path == p {
		return &m.Entries[i]
	}
	return nil
}

// Resolve returns the entry that holds e's attributes: e itself, or for a
// hardlink the file it links to (nil if the manifest lacks it).
func (m *Manifest) Resolve(e *Entry) *Entry {
	if e.Type != TypeHardlink {
		return e
	}
	return m.Lookup(e.Link)
}

// EntryError is an error about one entry of a manifest.
type EntryError struct {
	Line int    // 1-based line in the manifest text, 0 when not parsed from text
	Path string // the entry's path, escaped
	Err  error
}

func (e *EntryError) Error() string {
	var b strings.Builder
	b.WriteString("manifest")
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Path != "" {
		fmt.Fprintf(&b, " (%s)", e.Path)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *EntryError) Unwrap() error { return e.Err }

// Validate checks everything a consumer relies on: valid paths, sorted and
// unique; the root first and a directory; every parent present and a
// directory (so no path runs through a symlink); hardlinks to earlier
// regular files; attributes that fit each type; names, paths, link targets
// and xattrs within the kernel's limits (ErrTooLong).
func (m *Manifest) Validate() error {
	if len(m.Entries) == 0 || m.Entries[0].Path != "." {
		return &EntryError{Err: errors.New("no root entry \".\"")}
	}
	for i := range m.Entries {
		e := &m.Entries[i]
		bad := func(format string, a ...any) error {
			return &EntryError{Path: DisplayPath(e.Path), Err: fmt.Errorf(format, a...)}
		}
		if !ValidPath(e.Path) {
			return &EntryError{Path: DisplayPath(e.Path), Err: fmt.Errorf("%w: not a clean path inside the root", ErrUnsafePath)}
		}
		if i > 0 && ComparePaths(m.Entries[i-1].Path, e.Path) >= 0 {
			return bad("out of order or duplicate (after %s)", DisplayPath(m.Entries[i-1].Path))
		}
		if i == 0 && e.Type != TypeDir {
			return bad("root must be a directory, not %s", e.Type)
		}
		if i > 0 {
			if p := m.Lookup(Parent(e.Path)); p == nil {
				return bad("parent %s is missing", DisplayPath(Parent(e.Path)))
			} else if p.Type != TypeDir {
				return bad("%w: parent %s is a %s, not a directory", ErrUnsafePath, DisplayPath(p.Path), p.Type)
			}
		}
		if err := e.Check(); err != nil {
			return bad("%w", err)
		}
		if e.Type == TypeHardlink {
			t := m.Lookup(e.Link)
			switch {
			case t == nil:
				return bad("hardlink target %s is missing", DisplayPath(e.Link))
			case t.Type != TypeFile:
				return bad("hardlink target %s is a %s, not a regular file", DisplayPath(e.Link), t.Type)
			case ComparePaths(e.Link, e.Path) >= 0:
				return bad("hardlink target %s must come before the link", DisplayPath(e.Link))
			}
		}
	}
	return nil
}

// Limits of the Linux kernel (NAME_MAX, PATH_MAX less the NUL,
// XATTR_NAME_MAX, XATTR_SIZE_MAX) that every entry must keep: a longer
// name is legal in a tar but fails when written to a filesystem, half-way
// through a sync.
const (
	MaxNameLen       = 255
	MaxPathLen       = 4095
	MaxLinkLen       = 4095
	MaxXattrNameLen  = 255
	MaxXattrValueLen = 64 << 10
)

// ErrTooLong is wrapped by every error about a name, path, link target or
// xattr longer than the kernel takes.
var ErrTooLong = errors.New("images: longer than Linux allows")

// checkPathLen applies the kernel's limits to path p (a clean Entry path).
func checkPathLen(what, p string) error {
	if len(p) > MaxPathLen {
		return fmt.Errorf("%w: %s of %d bytes (at most %d)", ErrTooLong, what, len(p), MaxPathLen)
	}
	for name := range strings.SplitSeq(p, "/") {
		if len(name) > MaxNameLen {
			return fmt.Errorf("%w: %s has a name of %d bytes (at most %d)", ErrTooLong, what, len(name), MaxNameLen)
		}
	}
	return nil
}

// Check validates the attributes of one entry on its own (Validate checks
// them all, and where each stands among the others).
func (e *Entry) Check() error {
	if err := checkPathLen("path", e.Path); err != nil {
		return err
	}
	if e.Type == 0 || int(e.Type) >= len(typeNames) {
		return fmt.Errorf("invalid type %d", e.Type)
	}
	if e.Type == TypeHardlink {
		if !ValidPath(e.Link) || e.Link == "." {
			return fmt.Errorf("%w: hardlink target %q", ErrUnsafePath, e.Link)
		}
		if err := checkPathLen("hardlink target", e.Link); err != nil {
			return err
		}
		if e.Mode != 0 || e.UID != 0 || e.GID != 0 || e.Uname != "" || e.Gname != "" || e.Size != 0 ||
			!e.SHA256.IsZero() || e.DevMajor != 0 || e.DevMinor != 0 || len(e.Xattrs) != 0 || e.Mtime != 0 {
			return errors.New("hardlink carries attributes; they belong to its target")
		}
		return nil
	}
	if e.Mode&^ModePerm != 0 {
		return fmt.Errorf("mode %o has bits beyond %o", e.Mode, ModePerm)
	}
	if e.UID < 0 || e.GID < 0 || e.UID > 1<<32-1 || e.GID > 1<<32-1 {
		return fmt.Errorf("uid/gid %d/%d out of range", e.UID, e.GID)
	}
	if e.Type != TypeFile && (e.Size != 0 || !e.SHA256.IsZero()) {
		return fmt.Errorf("a %s has no size or content hash", e.Type)
	}
	if e.Size < 0 {
		return fmt.Errorf("negative size %d", e.Size)
	}
	if e.Type == TypeSymlink {
		if e.Link == "" || strings.IndexByte(e.Link, 0) >= 0 {
			return fmt.Errorf("symlink target %q is empty or has a NUL byte", e.Link)
		}
		if len(e.Link) > MaxLinkLen {
			return fmt.Errorf("%w: symlink target of %d bytes (at most %d)", ErrTooLong, len(e.Link), MaxLinkLen)
		}
	} else if e.Link != "" {
		return fmt.Errorf("a %s has no link target", e.Type)
	}
	if !e.IsDevice() && (e.DevMajor != 0 || e.DevMinor != 0) {
		return fmt.Errorf("a %s has no device numbers", e.Type)
	}
	for k, v := range e.Xattrs {
		if k == "" || strings.IndexByte(k, 0) >= 0 {
			return fmt.Errorf("xattr name %q is empty or has a NUL byte", k)
		}
		if len(k) > MaxXattrNameLen {
			return fmt.Errorf("%w: xattr name of %d bytes (at most %d)", ErrTooLong, len(k), MaxXattrNameLen)
		}
		if len(v) > MaxXattrValueLen {
			return fmt.Errorf("%w: xattr %s has a value of %d bytes (at most %d)", ErrTooLong, Escape(k), len(v), MaxXattrValueLen)
		}
	}
	return nil
}

// DisplayPath is path p as the manifest writes it: "." for the root, else
// "./" and the escaped path (Escape). Errors name paths this way.
func DisplayPath(p string) string {
	if p == "." {
		return "."
	}
	return "./" + Escape(p)
}

// Bytes returns the canonical text of m (FormatIngot).
func (m *Manifest) Bytes() []byte {
	var b bytes.Buffer
	_ = m.Write(&b, FormatIngot)
	return b.Bytes()
}

// Digest is the image digest: the sha256 of the canonical text.
func (m *Manifest) Digest() Digest { return Sum(m.Bytes()) }

// Write prints m in format f: one line per entry, in order.
func (m *Manifest) Write(w io.Writer, f Format) error {
	bw := bufio.NewWriter(w)
	header := ManifestHeader + "\n"
	if f != FormatIngot {
		header = "#mtree\n"
	}
	if _, err := bw.WriteString(header); err != nil {
		return err
	}
	var line []byte
	for i := range m.Entries {
		e := &m.Entries[i]
		if f == FormatMtree && e.Type == TypeHardlink {
			t := m.Lookup(e.Link)
			if t == nil {
				return fmt.Errorf("manifest (%s): hardlink target %s is missing", DisplayPath(e.Path), DisplayPath(e.Link))
			}
			c := t.Clone()
			c.Path = e.Path
			e = &c
		}
		line = e.appendLine(line[:0], f)
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// appendLine appends the text of e, without newline, in format f.
func (e *Entry) appendLine(b []byte, f Format) []byte {
	b = append(b, DisplayPath(e.Path)...)
	b = append(b, " type="...)
	b = append(b, e.Type.String()...)
	if e.Type == TypeHardlink {
		b = append(b, " link="...)
		return append(b, DisplayPath(e.Link)...)
	}
	b = append(b, " mode="...)
	b = appendMode(b, e.Mode)
	b = append(b, " uid="...)
	b = strconv.AppendInt(b, int64(e.UID), 10)
	b = append(b, " gid="...)
	b = strconv.AppendInt(b, int64(e.GID), 10)
	if f == FormatIngot {
		if e.Uname != "" {
			b = append(b, " uname="...)
			b = append(b, Escape(e.Uname)...)
		}
		if e.Gname != "" {
			b = append(b, " gname="...)
			b = append(b, Escape(e.Gname)...)
		}
	}
	if e.Type == TypeFile {
		b = append(b, " size="...)
		b = strconv.AppendInt(b, e.Size, 10)
		b = append(b, " sha256digest="...)
		b = append(b, e.SHA256.String()...)
	}
	if e.Type == TypeSymlink {
		b = append(b, " link="...)
		b = append(b, Escape(e.Link)...)
	}
	if e.IsDevice() {
		b = append(b, " device=native,"...)
		b = strconv.AppendUint(b, uint64(e.DevMajor), 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(e.DevMinor), 10)
	}
	b = append(b, " time="...)
	b = strconv.AppendInt(b, e.Mtime, 10)
	b = append(b, ".000000000"...)
	if f == FormatIngot && len(e.Xattrs) > 0 {
		keys := slices.Sorted(maps.Keys(e.Xattrs))
		for _, k := range keys {
			b = append(b, " xattr."...)
			b = append(b, Escape(k)...)
			b = append(b, '=')
			b = base64.StdEncoding.AppendEncode(b, []byte(e.Xattrs[k]))
		}
	}
	return b
}

func appendMode(b []byte, m uint32) []byte {
	s := strconv.FormatUint(uint64(m), 8)
	for i := len(s); i < 4; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// ParseManifest reads a manifest in ingot's format and validates it. Every
// error names the line.
//
// A v2 manifest (ManifestHeader) must be exactly what Manifest.Write
// prints: every line canonical (keywords in order, escapes and numbers as
// written, xattrs sorted and unique), no blank or comment lines. What ingot
// could not have written is refused rather than guessed at. A v1 manifest
// is read as before (any spacing, any escape, other keyword order) and its
// entries re-sorted into the v2 order; its Bytes are then the v2 text,
// with another digest.
func ParseManifest(r io.Reader) (*Manifest, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxLine)
	m := &Manifest{}
	n := 0
	version := 0
	var canon []byte
	for sc.Scan() {
		n++
		text := sc.Text()
		if n == 1 {
			switch text {
			case ManifestHeader:
				version = 2
				continue
			case manifestHeaderV1:
				version = 1
				continue
			}
			return nil, &EntryError{Line: 1, Err: fmt.Errorf("missing header %q", ManifestHeader)}
		}
		if version == 1 && (strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#")) {
			continue
		}
		e, err := parseLine(text)
		if err == nil && version == 2 {
			if canon = e.appendLine(canon[:0], FormatIngot); string(canon) != text {
				err = fmt.Errorf("not in canonical form: ingot writes this entry as %q", canon)
			}
		}
		if err != nil {
			path, _, _ := strings.Cut(text, " ")
			if len(path) > 200 {
				path = path[:200] + "…"
			}
			return nil, &EntryError{Line: n, Path: path, Err: err}
		}
		m.Entries = append(m.Entries, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &EntryError{Line: n + 1, Err: fmt.Errorf("line longer than %d bytes", maxLine)}
		}
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	if version == 0 {
		return nil, &EntryError{Line: 1, Err: fmt.Errorf("missing header %q", ManifestHeader)}
	}
	if version == 1 {
		// A hardlink may now sort before the file it named: the first
		// path of each group carries the file, as imagetar.Read does it.
		m.Sort()
		LeadHardlinks(m.Entries)
	}
	if err := m.Validate(); err != nil {
		var ee *EntryError
		if errors.As(err, &ee) && ee.Line == 0 && ee.Path != "" && version == 2 {
			// Point at the line; entries follow the header one per line.
			ee.Line = m.lineOf(ee.Path)
		}
		return nil, err
	}
	return m, nil
}

// lineOf is a best effort at the line number of the entry shown as disp.
func (m *Manifest) lineOf(disp string) int {
	for i := range m.Entries {
		if DisplayPath(m.Entries[i].Path) == disp {
			return i + 2
		}
	}
	return 0
}

func parsePathField(s string) (string, error) {
	u, err := Unescape(s)
	if err != nil {
		return "", err
	}
	if u == "." {
		return ".", nil
	}
	if !strings.HasPrefix(u, "./") {
		return "", fmt.Errorf("path %q does not start with \"./\"", s)
	}
	c, err := CleanPath(u[2:])
	if err != nil {
		return "", err
	}
	if c != u[2:] {
		return "", fmt.Errorf("%w: path %q is not clean", ErrUnsafePath, s)
	}
	return c, nil
}

func parseLine(text string) (Entry, error) {
	var e Entry
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return e, errors.New("blank line")
	}
	p, err := parsePathField(fields[0])
	if err != nil {
		return e, err
	}
	e.Path = p
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return e, fmt.Errorf("%q is not keyword=value", f)
		}
		if seen[k] {
			return e, fmt.Errorf("keyword %q given twice", k)
		}
		seen[k] = true
		var err error
		switch {
		case k == "type":
			e.Type, err = ParseType(v)
		case k == "mode":
			var u uint64
			u, err = strconv.ParseUint(v, 8, 32)
			e.Mode = uint32(u)
		case k == "uid":
			e.UID, err = parseID(v)
		case k == "gid":
			e.GID, err = parseID(v)
		case k == "uname":
			e.Uname, err = Unescape(v)
		case k == "gname":
			e.Gname, err = Unescape(v)
		case k == "size":
			e.Size, err = strconv.ParseInt(v, 10, 64)
		case k == "sha256digest":
			e.SHA256, err = ParseDigest(v)
		case k == "link":
			e.Link, err = Unescape(v)
		case k == "device":
			e.DevMajor, e.DevMinor, err = parseDevice(v)
		case k == "time":
			e.Mtime, err = parseTime(v)
		case strings.HasPrefix(k, "xattr."):
			var name string
			var val []byte
			if name, err = Unescape(k[len("xattr."):]); err == nil {
				val, err = base64.StdEncoding.Strict().DecodeString(v)
			}
			if e.Xattrs == nil {
				e.Xattrs = map[string]string{}
			}
			if _, dup := e.Xattrs[name]; dup && err == nil {
				err = fmt.Errorf("xattr %q given twice", name)
			}
			e.Xattrs[name] = string(val)
		default:
			return e, fmt.Errorf("unknown keyword %q", k)
		}
		if err != nil {
			return e, fmt.Errorf("%s: %w", k, err)
		}
	}
	if !seen["type"] {
		return e, errors.New("no type=")
	}
	if e.Type == TypeHardlink {
		if !seen["link"] || len(seen) != 2 {
			return e, errors.New("a hardlink has exactly type= and link=")
		}
		if e.Link, err = parsePathField(e.Link); err != nil {
			return e, fmt.Errorf("hardlink target: %w", err)
		}
		return e, nil
	}
	for _, k := range []string{"mode", "uid", "gid", "time"} {
		if !seen[k] {
			return e, fmt.Errorf("no %s=", k)
		}
	}
	if e.Type == TypeFile && (!seen["size"] || !seen["sha256digest"]) {
		return e, errors.New("a file needs size= and sha256digest=")
	}
	if e.Type == TypeSymlink && !seen["link"] {
		return e, errors.New("a symlink needs link=")
	}
	if e.IsDevice() && !seen["device"] {
		return e, errors.New("a device needs device=")
	}
	return e, e.Check()
}

func parseID(v string) (int, error) {
	u, err := strconv.ParseUint(v, 10, 32)
	return int(u), err
}

func parseDevice(v string) (uint32, uint32, error) {
	parts := strings.Split(v, ",")
	if len(parts) != 3 || parts[0] != "native" {
		return 0, 0, fmt.Errorf("%q: want native,MAJOR,MINOR", v)
	}
	maj, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil {
		return 0, 0, err
	}
	minor, err := strconv.ParseUint(parts[2], 10, 32)
	return uint32(maj), uint32(minor), err
}

func parseTime(v string) (int64, error) {
	sec, frac, ok := strings.Cut(v, ".")
	if ok && strings.Trim(frac, "0") != "" {
		return 0, fmt.Errorf("%q: ingot keeps whole seconds", v)
	}
	return strconv.ParseInt(sec, 10, 64)
}

// LeadHardlinks makes the first path of each hardlink group, in manifest
// order, the one that carries the file; entries must be sorted.
func LeadHardlinks(entries []Entry) {
	idx := func(p string) int {
		i, _ := slices.BinarySearchFunc(entries, p, func(e Entry, p string) int { return ComparePaths(e.Path, p) })
		return i
	}
	first := map[string]int{} // file path → index of the group's first member
	for i := range entries {
		e := &entries[i]
		if e.Type != TypeHardlink {
			continue
		}
		if _, ok := first[e.Link]; !ok {
			first[e.Link] = i
		}
	}
	moved := map[string]string{} // old file path → new one
	for target, lead := range first {
		ti := idx(target)
		if ti < lead {
			continue
		}
		f := entries[ti]
		newPath := entries[lead].Path
		entries[ti] = Entry{Path: f.Path, Type: TypeHardlink, Link: newPath}
		f.Path = newPath
		entries[lead] = f
		moved[target] = newPath
	}
	for i := range entries {
		e := &entries[i]
		if e.Type != TypeHardlink {
			continue
		}
		if p, ok := moved[e.Link]; ok {
			e.Link = p
		}
	}
}
