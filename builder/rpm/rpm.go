package rpm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	rpmlib "github.com/cavaliergopher/rpm"
)

// ErrBadRPM is wrapped by every error about a malformed RPM.
var ErrBadRPM = errors.New("rpm2deb: malformed RPM")

// Package is an RPM package whose header has been read. Payload gives the
// decompressed cpio stream once.
type Package struct {
	Name string // the input's name, for errors

	hdr   *rpmlib.Header
	files []File
	br    *bufio.Reader
}

// Files is the header's file list, in header order (the order stripped
// cpio members index).
func (p *Package) Files() []File { return p.files }

// File is one file of the header's file list, with every attribute the
// header gives.
type File struct {
	Index    int
	Path     string // absolute, as in the header ("/usr/bin/foo")
	Mode     uint32 // st_mode: type bits and permissions
	Size     int64
	Mtime    int64
	Rdev     uint32
	Digest   string // hex, algorithm from the header
	LinkTo   string
	Flags    uint32
	User     string
	Group    string
	Dev      uint32
	Inode    uint32
	Caps     string // text form, "cap_net_raw=ep"
	HasInode bool
}

// File types in File.Mode (st_mode's S_IF* bits).
const (
	ModeType    = 0o170000
	ModeSocket  = 0o140000
	ModeSymlink = 0o120000
	ModeRegular = 0o100000
	ModeBlock   = 0o060000
	ModeDir     = 0o040000
	ModeChar    = 0o020000
	ModeFifo    = 0o010000
)

// fullReader turns short reads into full ones: rpmlib.Read assumes Read fills
// its buffer, which a bufio.Reader does not promise.
type fullReader struct{ r io.Reader }

func (f fullReader) Read(p []byte) (int, error) { return io.ReadFull(f.r, p) }

// Read reads the lead, signature and header of an RPM from r, leaving r
// at the start of the payload. name names the input in errors.
func Read(r io.Reader, name string) (p *Package, err error) {
	defer func() {
		// The rpm library indexes tag values it has not length-checked;
		// a malformed header must be an error, not a crash.
		if v := recover(); v != nil {
			p, err = nil, fmt.Errorf("%s: %w: header: %v", name, ErrBadRPM, v)
		}
	}()
	br := bufio.NewReaderSize(r, 1<<16)
	// Check the two headers' index entries before the rpm library sees
	// them: it allocates what an entry's count says before checking the
	// count against the data it has.
	var pre bytes.Buffer
	if err := copyN(&pre, br, 96); err != nil {
		return nil, fmt.Errorf("%s: %w: truncated in the lead", name, ErrBadRPM)
	}
	for _, h := range []struct {
		what string
		pad  bool
	}{{"signature", true}, {"header", false}} {
		if err := checkHeader(&pre, br, h.pad); err != nil {
			return nil, fmt.Errorf("%s: %w: %s: %v", name, ErrBadRPM, h.what, err)
		}
	}
	pkg, err := rpmlib.Read(fullReader{io.MultiReader(&pre, br)})
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%s: %w: truncated before the end of the header", name, ErrBadRPM)
		}
		return nil, fmt.Errorf("%s: %w: %v", name, ErrBadRPM, err)
	}
	p = &Package{Name: name, hdr: &pkg.Header, br: br}
	if p.Str(TagName) == "" {
		return nil, fmt.Errorf("%s: %w: header has no package name", name, ErrBadRPM)
	}
	if p.Str(TagVersion) == "" {
		return nil, fmt.Errorf("%s: %w: header has no version", name, ErrBadRPM)
	}
	if p.files, err = p.readFiles(); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrBadRPM, err)
	}
	return p, nil
}

func (p *Package) tag(id int) *rpmlib.Tag { return p.hdr.GetTag(id) }

func (p *Package) Has(id int) bool { return p.tag(id) != nil }

// str is a STRING, I18NSTRING (first value) or the first element of a
// STRING_ARRAY tag; "" if absent.
func (p *Package) Str(id int) string {
	s := p.tag(id).StringSlice()
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func (p *Package) Strings(id int) []string { return p.tag(id).StringSlice() }

func (p *Package) Ints(id int) []int64 { return p.tag(id).Int64Slice() }

func (p *Package) Int(id int) (int64, bool) {
	v := p.Ints(id)
	if len(v) == 0 {
		return 0, false
	}
	return v[0], true
}

// Name, Version, Release and Arch are the package's identity in the header.
func (p *Package) PkgName() string { return p.Str(TagName) }
func (p *Package) Version() string { return p.Str(TagVersion) }
func (p *Package) Release() string { return p.Str(TagRelease) }
func (p *Package) Arch() string    { return p.Str(TagArch) }

// Epoch returns the epoch and whether the header has one.
func (p *Package) Epoch() (int64, bool) { return p.Int(TagEpoch) }

// BuildTime is the header's build time in Unix seconds (0 if absent).
func (p *Package) BuildTime() int64 {
	v, _ := p.Int(TagBuildTime)
	return v
}

// NEVRA is name-[epoch:]version-release.arch, as rpm prints it.
func (p *Package) NEVRA() string {
	e := ""
	if ep, ok := p.Epoch(); ok {
		e = fmt.Sprintf("%d:", ep)
	}
	return fmt.Sprintf("%s-%s%s-%s.%s", p.PkgName(), e, p.Version(), p.Release(), p.Arch())
}

// readFiles builds the file list from the header's parallel arrays,
// checking that every array has one value per file.
func (p *Package) readFiles() ([]File, error) {
	paths, err := p.filePaths()
	if err != nil || len(paths) == 0 {
		return nil, err
	}
	a := fileArrays{p: p, n: len(paths)}
	sizeTag := TagFileSizes
	if p.Has(TagLongFileSizes) {
		sizeTag = TagLongFileSizes
	}
	sizes := a.ints(sizeTag, "file sizes", true)
	modes := a.ints(TagFileModes, "file modes", true)
	mtimes := a.ints(TagFileMtimes, "file mtimes", false)
	rdevs := a.ints(TagFileRdevs, "device numbers", false)
	flags := a.ints(TagFileFlags, "file flags", false)
	devs := a.ints(TagFileDevices, "file devices", false)
	inodes := a.ints(TagFileInodes, "file inodes", false)
	digests := a.strs(TagFileDigests, "file digests", false)
	links := a.strs(TagFileLinkTos, "link targets", false)
	users := a.strs(TagFileUserName, "file owners", true)
	groups := a.strs(TagFileGroupName, "file groups", true)
	caps := a.strs(TagFileCaps, "file capabilities", false)
	if a.err != nil {
		return nil, a.err
	}
	files := make([]File, len(paths))
	for i := range files {
		if sizes[i] < 0 {
			return nil, fmt.Errorf("file %q: negative size", paths[i])
		}
		files[i] = File{
			Index:    i,
			Path:     paths[i],
			Mode:     uint32(modes[i]) & 0xffff,
			Size:     sizes[i],
			Mtime:    at(mtimes, i),
			Rdev:     uint32(at(rdevs, i)),
			Digest:   strings.ToLower(at(digests, i)),
			LinkTo:   at(links, i),
			Flags:    uint32(at(flags, i)),
			User:     users[i],
			Group:    groups[i],
			Dev:      uint32(at(devs, i)),
			Inode:    uint32(at(inodes, i)),
			Caps:     at(caps, i),
			HasInode: inodes != nil,
		}
	}
	return files, nil
}

// filePaths is the header's file names: base names joined to their
// directories, or the old one-array form.
func (p *Package) filePaths() ([]string, error) {
	if !p.Has(TagBaseNames) {
		return p.Strings(TagOldFilenames), nil
	}
	base := p.Strings(TagBaseNames)
	dirs := p.Strings(TagDirNames)
	idx := p.Ints(TagDirIndexes)
	if len(idx) != len(base) {
		return nil, fmt.Errorf("header has %d file names but %d directory indexes", len(base), len(idx))
	}
	paths := make([]string, 0, len(base))
	for i, b := range base {
		if idx[i] < 0 || idx[i] >= int64(len(dirs)) {
			return nil, fmt.Errorf("file %q: directory index %d out of range", b, idx[i])
		}
		paths = append(paths, dirs[idx[i]]+b)
	}
	return paths, nil
}

// fileArrays reads the header's per-file arrays, each of which must have
// n values (or be absent, when not needed). The first error sticks.
type fileArrays struct {
	p   *Package
	n   int
	err error
}

func (a *fileArrays) ints(id int, name string, need bool) []int64 {
	return check(a, a.p.Ints(id), name, need)
}

func (a *fileArrays) strs(id int, name string, need bool) []string {
	return check(a, a.p.Strings(id), name, need)
}

func check[T any](a *fileArrays, v []T, name string, need bool) []T {
	if a.err != nil || (v == nil && !need) {
		return nil
	}
	if len(v) != a.n {
		a.err = fmt.Errorf("header has %d files but %d %s", a.n, len(v), name)
		return nil
	}
	return v
}

// at is v[i], or the zero value for an absent array.
func at[T any](v []T, i int) T {
	var zero T
	if v == nil {
		return zero
	}
	return v[i]
}
