package imagetar

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/images/internal/accounts"
	"github.com/ingotfleet/ingot/images/internal/counting"
)

// Options tunes Read.
type Options struct {
	// Name names the input in errors, for instance the file name. "tar"
	// when empty.
	Name string
	// TarNames keeps the user and group names of the tar headers even when
	// the archive holds the image's own etc/passwd and etc/group. By
	// default those files decide the names, as images.WalkDir does, so that a tree
	// and a tar of it give the same manifest whichever host made the tar.
	TarNames bool
	// FnHashes says that fn reads every file's content to its end and sets
	// e.SHA256 to its sha256 (a store computes it anyway): the reader then
	// does not hash the bytes a second time. It still counts them, and a
	// file fn does not read to its end, or leaves without a hash, is an
	// error.
	FnHashes bool
}

// Error is an error about a tar stream, naming the input and, when the
// error is about one entry, its position (1-based) and name as archived.
type Error struct {
	Input string
	Entry int
	Name  string
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("tar ")
	b.WriteString(e.Input)
	if e.Entry > 0 {
		fmt.Fprintf(&b, ": entry %d", e.Entry)
		if e.Name != "" {
			fmt.Fprintf(&b, " %q", e.Name)
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Attributes of a directory that Read adds because the archive holds
// paths under it but not the directory itself.
const (
	impliedDirMode  = 0o755
	impliedDirMtime = 0
)

// Read reads a tar stream (plain, gzip or zstd, detected from its first
// bytes; ustar, PAX or GNU) into a Manifest, passing each regular file's
// content to fn (which may be nil).
//
// It refuses, with an *Error naming the entry: absolute paths and paths
// with "..", paths under a symlink or any other non-directory of the
// archive, hardlinks to paths not earlier in the archive or to anything but
// a regular file, names, paths, link targets and xattrs longer than
// Linux takes (images.ErrTooLong, see images.MaxNameLen), entry types other than file,
// directory, symlink, hardlink, char and block device and fifo, sparse files (whose few bytes
// of map can announce terabytes), a path given twice (except a
// directory, whose later entry wins, as with tar -x), and truncated or
// corrupt archives, including a plain tar without its end-of-archive
// marker and a compressed stream whose trailer does not check.
//
// Directories that the archive implies but does not hold get mode 0755,
// owner 0:0 without names and mtime 0. Mtimes are truncated to whole
// seconds; xattrs are read from SCHILY.xattr.* and LIBARCHIVE.xattr.*
// records. Users' and groups' names come from the archive's own etc/passwd
// and etc/group when it has them (ids they do not list get no name), else
// from the tar headers; see Options.TarNames.
func Read(ctx context.Context, r io.Reader, opts Options, fn images.FileFunc) (*images.Manifest, error) {
	input := opts.Name
	if input == "" {
		input = "tar"
	}
	fail := func(n int, name string, err error) error {
		return &Error{Input: input, Entry: n, Name: name, Err: err}
	}
	dec, comp, err := compression.NewDecompressor(r)
	if err != nil {
		return nil, fail(0, "", err)
	}
	defer dec.Close()
	tail := &tailReader{r: dec}
	tr := tar.NewReader(tail)
	rd := &tarReader{index: map[string]int{}, where: map[string]int{}, fn: fn, comp: comp, fnHashes: opts.FnHashes && fn != nil}
	// streamErr prefers, over a read error of the tar layer, one of the
	// compressed stream beneath it: corruption there often shows first as
	// a bad tar header, and gzip only checks its CRC at the end. It reads
	// at most maxDrain more bytes to find out.
	streamErr := func(err error) error {
		var ce *contentError
		if comp == compression.None || !(errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ce)) {
			return err
		}
		if _, derr := io.Copy(io.Discard, io.LimitReader(dec, maxDrain)); derr != nil {
			return fmt.Errorf("%w (%w)", describeReadError(comp, derr), err)
		}
		return err
	}
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		n++
		if err != nil {
			return nil, fail(n, "", streamErr(describeReadError(comp, err)))
		}
		if err := rd.add(n, hdr, tr); err != nil {
			return nil, fail(n, hdr.Name, streamErr(err))
		}
	}
	if tail.zeros < 2*512 {
		return nil, fail(0, "", errors.New("truncated: the archive ends without its end-of-archive marker"))
	}
	if comp != compression.None {
		// Read the compressed stream to its end so its checksum is checked.
		if _, err := io.Copy(io.Discard, dec); err != nil {
			return nil, fail(0, "", fmt.Errorf("after the end of the archive: %w", describeReadError(comp, err)))
		}
	}
	if _, ok := rd.index["."]; !ok {
		rd.imply(".")
	}
	entries := rd.entries
	slices.SortFunc(entries, func(a, b images.Entry) int { return images.ComparePaths(a.Path, b.Path) })
	images.LeadHardlinks(entries)
	if !opts.TarNames {
		users, groups := rd.accounts.Names()
		images.ApplyNames(entries, users, groups)
	}
	m, err := images.NewManifest(entries)
	if err != nil {
		return nil, fail(0, "", err)
	}
	return m, nil
}

// maxDrain bounds how far Read reads past a tar error to see whether
// the compressed stream beneath is corrupt.
const maxDrain = 64 << 20

// contentError is an error met while reading a file's content.
type contentError struct{ err error }

func (e *contentError) Error() string { return "content: " + e.err.Error() }
func (e *contentError) Unwrap() error { return e.err }

// Bounds on the small files of etc/ that Read keeps while reading, in
// case etc/passwd or etc/group is a hardlink to one of them.
const (
	maxEtcFile = 256 << 10
	maxEtcKept = 8 << 20
)

// describeReadError says what a read error means for the archive.
func describeReadError(comp compression.Compression, err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("truncated (%s): %w", comp, err)
	case errors.Is(err, tar.ErrHeader):
		return fmt.Errorf("corrupt tar header: %w", err)
	case comp != compression.None:
		return fmt.Errorf("corrupt %s stream: %w", comp, err)
	}
	return err
}

// tarReader accumulates the entries of one archive.
type tarReader struct {
	entries  []images.Entry
	index    map[string]int // path → position in entries
	where    map[string]int // path → tar entry number; absent for implied directories
	fn       images.FileFunc
	fnHashes bool // fn sets e.SHA256 (Options.FnHashes)
	comp     compression.Compression
	accounts accounts.Capture
	etc      map[string]*[]byte // content of small files in etc/, by path
	etcKept  int64
}

func (rd *tarReader) add(n int, hdr *tar.Header, tr io.Reader) error {
	p, err := tarPath(hdr.Name)
	if err != nil {
		return err
	}
	e := images.Entry{
		Path:  p,
		Mode:  uint32(hdr.Mode) & images.ModePerm,
		UID:   hdr.Uid,
		GID:   hdr.Gid,
		Uname: hdr.Uname,
		Gname: hdr.Gname,
		Mtime: hdr.ModTime.Unix(),
	}
	if hdr.Mode < 0 || hdr.Mode > 1<<32-1 {
		return fmt.Errorf("mode %o out of range", hdr.Mode)
	}
	if isSparse(hdr) {
		// A few bytes of sparse map can announce terabytes of holes.
		return errors.New("sparse files are not supported (archive without tar --sparse)")
	}
	switch hdr.Typeflag {
	case tar.TypeReg, '\x00':
		e.Type = images.TypeFile
	case tar.TypeDir:
		e.Type = images.TypeDir
	case tar.TypeSymlink:
		e.Type = images.TypeSymlink
		e.Link = hdr.Linkname
	case tar.TypeLink:
		t, err := tarPath(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hardlink target: %w", err)
		}
		i, ok := rd.index[t]
		if !ok {
			return fmt.Errorf("hardlink to %q, which is not earlier in the archive", hdr.Linkname)
		}
		switch target := &rd.entries[i]; target.Type {
		case images.TypeFile:
		case images.TypeHardlink:
			t = target.Link
		default:
			return fmt.Errorf("hardlink to %q, a %s, not a regular file", hdr.Linkname, target.Type)
		}
		e = images.Entry{Path: p, Type: images.TypeHardlink, Link: t}
		if dst := rd.accounts.Target(p); dst != nil {
			if b, ok := rd.etc[t]; ok {
				*dst = append((*dst)[:0], *b...)
			} else {
				rd.accounts.Forget(p)
			}
		}
	case tar.TypeChar, tar.TypeBlock:
		e.Type = images.TypeChar
		if hdr.Typeflag == tar.TypeBlock {
			e.Type = images.TypeBlock
		}
		if hdr.Devmajor < 0 || hdr.Devmajor > 1<<32-1 || hdr.Devminor < 0 || hdr.Devminor > 1<<32-1 {
			return fmt.Errorf("device %d,%d out of range", hdr.Devmajor, hdr.Devminor)
		}
		e.DevMajor, e.DevMinor = uint32(hdr.Devmajor), uint32(hdr.Devminor)
	case tar.TypeFifo:
		e.Type = images.TypeFifo
	default:
		return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
	}
	if e.Type != images.TypeHardlink {
		x, err := tarXattrs(hdr.PAXRecords)
		if err != nil {
			return err
		}
		e.Xattrs = x
	}
	if err := e.Check(); err != nil {
		return err
	}
	if p == "." && e.Type != images.TypeDir {
		return fmt.Errorf("the root must be a directory, not a %s", e.Type)
	}
	if err := rd.checkPlace(p, e.Type); err != nil {
		return err
	}
	if e.Type == images.TypeFile {
		if err := rd.content(&e, hdr.Size, tr); err != nil {
			return err
		}
	}
	rd.put(n, e)
	return nil
}

// isSparse reports whether hdr is a GNU or PAX sparse file.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// tarPath turns a name from a tar header into an Entry path, refusing
// absolute paths (which tar -x would also strip, but an image must not
// hold) and anything CleanPath refuses.
func tarPath(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: %q is absolute", images.ErrUnsafePath, name)
	}
	return images.CleanPath(name)
}

// checkPlace makes sure an entry of type t may go at p: its parent is a
// directory of the archive (implied if absent) and p is new, or both are
// directories.
func (rd *tarReader) checkPlace(p string, t images.Type) error {
	if i, ok := rd.index[p]; ok {
		old := &rd.entries[i]
		if old.Type == images.TypeDir && t == images.TypeDir {
			return nil
		}
		if w, ok := rd.where[p]; ok {
			return fmt.Errorf("duplicate path: entry %d already gave %s as a %s", w, images.DisplayPath(p), old.Type)
		}
		return fmt.Errorf("%s comes after entries under it, as a %s, not a directory", images.DisplayPath(p), t)
	}
	if p == "." {
		return nil
	}
	return rd.parentDir(p)
}

// parentDir checks that the parent of p is a directory, implying missing
// ones.
func (rd *tarReader) parentDir(p string) error {
	par := images.Parent(p)
	i, ok := rd.index[par]
	if !ok {
		if par != "." {
			if err := rd.parentDir(par); err != nil {
				return err
			}
		}
		rd.imply(par)
		return nil
	}
	if t := rd.entries[i].Type; t != images.TypeDir {
		what := "an earlier entry"
		if w, ok := rd.where[par]; ok {
			what = fmt.Sprintf("entry %d", w)
		}
		return fmt.Errorf("%w: its parent %s is a %s (%s), not a directory", images.ErrUnsafePath, images.DisplayPath(par), t, what)
	}
	return nil
}

// imply adds the directory p, which the archive does not hold.
func (rd *tarReader) imply(p string) {
	rd.index[p] = len(rd.entries)
	rd.entries = append(rd.entries, images.Entry{Path: p, Type: images.TypeDir, Mode: impliedDirMode, Mtime: impliedDirMtime})
}

// put stores e, replacing a directory already at its path.
func (rd *tarReader) put(n int, e images.Entry) {
	rd.where[e.Path] = n
	if i, ok := rd.index[e.Path]; ok {
		rd.entries[i] = e
		return
	}
	rd.index[e.Path] = len(rd.entries)
	rd.entries = append(rd.entries, e)
}

// content passes a file's content to fn and hashes it.
func (rd *tarReader) content(e *images.Entry, size int64, r io.Reader) error {
	var h hash.Hash
	var w io.Writer = io.Discard
	if !rd.fnHashes {
		h = sha256.New()
		w = h
	}
	if dst := rd.accounts.Target(e.Path); dst != nil {
		*dst = (*dst)[:0]
		w = io.MultiWriter(w, accounts.Appender{Dst: dst})
	} else if images.Parent(e.Path) == "etc" && size <= maxEtcFile && rd.etcKept+size <= maxEtcKept {
		// Kept in case etc/passwd or etc/group turns out to be a
		// hardlink to it.
		if rd.etc == nil {
			rd.etc = map[string]*[]byte{}
		}
		buf := make([]byte, 0, size)
		rd.etc[e.Path] = &buf
		rd.etcKept += size
		w = io.MultiWriter(w, accounts.Appender{Dst: &buf})
	}
	cr := &counting.Reader{R: r}
	if w != io.Discard {
		cr.R = io.TeeReader(r, w)
	}
	e.Size = size
	e.SHA256 = images.Digest{}
	if rd.fn != nil {
		if err := rd.fn(e, cr); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = describeReadError(rd.comp, err)
			}
			return &contentError{err}
		}
	}
	read := cr.N
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return &contentError{describeReadError(rd.comp, err)}
	}
	if cr.N != size {
		return fmt.Errorf("content: %d bytes, the header says %d", cr.N, size)
	}
	e.Size = cr.N
	if rd.fnHashes {
		if read != cr.N || e.SHA256 == (images.Digest{}) {
			return fmt.Errorf("content: the reader stopped after %d of %d bytes without its hash", read, cr.N)
		}
		return nil
	}
	e.SHA256 = images.Digest(h.Sum(nil))
	return nil
}

// tarXattrs collects the xattrs of PAX records: SCHILY.xattr.NAME (raw
// value, as GNU tar, star and bsdtar write; %3D and %25 in NAME decoded to
// '=' and '%', as GNU tar encodes and decodes them) and
// LIBARCHIVE.xattr.NAME (URL-escaped name, base64 value, as bsdtar also
// writes). SCHILY wins when both give a name.
func tarXattrs(recs map[string]string) (map[string]string, error) {
	var x map[string]string
	for k, v := range recs {
		if enc, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			name := gnuDecodeXattrName(enc)
			if name == "" {
				return nil, errors.New("PAX record SCHILY.xattr. without a name")
			}
			if x == nil {
				x = map[string]string{}
			}
			x[name] = v
		}
	}
	for k, v := range recs {
		enc, ok := strings.CutPrefix(k, "LIBARCHIVE.xattr.")
		if !ok {
			continue
		}
		name, err := url.PathUnescape(enc)
		if err != nil || name == "" || strings.IndexByte(name, 0) >= 0 {
			return nil, fmt.Errorf("PAX record %q: bad xattr name", k)
		}
		val, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
		if err != nil {
			return nil, fmt.Errorf("PAX record %q: %w", k, err)
		}
		if x == nil {
			x = map[string]string{}
		}
		if _, ok := x[name]; !ok {
			x[name] = string(val)
		}
	}
	return x, nil
}

// tailReader counts the zero bytes at the end of what has been read, to
// tell a tar that ends with its end-of-archive marker from one cut at an
// entry boundary.
type tailReader struct {
	r     io.Reader
	zeros int
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	b := p[:n]
	i := len(b)
	for i > 0 && b[i-1] == 0 {
		i--
	}
	if i == 0 {
		t.zeros += n
	} else {
		t.zeros = n - i
	}
	return n, err
}
