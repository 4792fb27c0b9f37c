package rpm2deb

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/cavaliergopher/rpm"
)

// Header tags used by the converter (rpm's include/rpm/rpmtag.h).
const (
	tagName              = 1000
	tagVersion           = 1001
	tagRelease           = 1002
	tagEpoch             = 1003
	tagSummary           = 1004
	tagDescription       = 1005
	tagBuildTime         = 1006
	tagVendor            = 1011
	tagLicense           = 1014
	tagPackager          = 1015
	tagGroup             = 1016
	tagURL               = 1020
	tagArch              = 1022
	tagPreIn             = 1023
	tagPostIn            = 1024
	tagPreUn             = 1025
	tagPostUn            = 1026
	tagOldFilenames      = 1027
	tagFileSizes         = 1028
	tagFileModes         = 1030
	tagFileRdevs         = 1033
	tagFileMtimes        = 1034
	tagFileDigests       = 1035
	tagFileLinkTos       = 1036
	tagFileFlags         = 1037
	tagFileUserName      = 1039
	tagFileGroupName     = 1040
	tagProvideName       = 1047
	tagRequireFlags      = 1048
	tagRequireName       = 1049
	tagRequireVersion    = 1050
	tagConflictFlags     = 1053
	tagConflictName      = 1054
	tagConflictVersion   = 1055
	tagTriggerScripts    = 1065
	tagTriggerName       = 1066
	tagVerifyScript      = 1079
	tagChangelogTime     = 1080
	tagChangelogName     = 1081
	tagChangelogText     = 1082
	tagPreInProg         = 1085
	tagPostInProg        = 1086
	tagPreUnProg         = 1087
	tagPostUnProg        = 1088
	tagObsoleteName      = 1090
	tagFileDevices       = 1095
	tagFileInodes        = 1096
	tagProvideFlags      = 1112
	tagProvideVersion    = 1113
	tagObsoleteFlags     = 1114
	tagObsoleteVersion   = 1115
	tagDirIndexes        = 1116
	tagBaseNames         = 1117
	tagDirNames          = 1118
	tagPayloadFormat     = 1124
	tagPayloadCompressor = 1125
	tagPreTrans          = 1151
	tagPostTrans         = 1152
	tagLongFileSizes     = 5008
	tagFileCaps          = 5010
	tagFileDigestAlgo    = 5011
	tagRecommendName     = 5046
	tagRecommendVersion  = 5047
	tagRecommendFlags    = 5048
	tagSuggestName       = 5049
	tagSuggestVersion    = 5050
	tagSuggestFlags      = 5051
	tagSupplementName    = 5052
	tagEnhanceName       = 5055
	tagFileTriggerScript = 5066
	tagTransFileTrigger  = 5076
	tagPayloadDigest     = 5092
	tagPayloadDigestAlgo = 5093
	tagPreUnTrans        = 5104 // rpm ≥ 4.20
	tagPostUnTrans       = 5105
)

// RPM file flags (RPMFILE_*).
const (
	fileConfig    = 1 << 0
	fileDoc       = 1 << 1
	fileMissingOK = 1 << 3
	fileNoReplace = 1 << 4
	fileGhost     = 1 << 6
	fileLicense   = 1 << 7
	fileArtifact  = 1 << 12
)

// ErrBadRPM is wrapped by every error about a malformed RPM.
var ErrBadRPM = errors.New("rpm2deb: malformed RPM")

// RPM is an RPM package whose header has been read. Payload gives the
// decompressed cpio stream once.
type RPM struct {
	Name string // the input's name, for errors

	hdr   *rpm.Header
	files []rpmFile
	br    *bufio.Reader
}

// rpmFile is one file of the header's file list, with every attribute the
// header gives.
type rpmFile struct {
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

const (
	sIFMT   = 0o170000
	sIFSOCK = 0o140000
	sIFLNK  = 0o120000
	sIFREG  = 0o100000
	sIFBLK  = 0o060000
	sIFDIR  = 0o040000
	sIFCHR  = 0o020000
	sIFIFO  = 0o010000
)

// fullReader turns short reads into full ones: rpm.Read assumes Read fills
// its buffer, which a bufio.Reader does not promise.
type fullReader struct{ r io.Reader }

func (f fullReader) Read(p []byte) (int, error) { return io.ReadFull(f.r, p) }

// ReadRPM reads the lead, signature and header of an RPM from r, leaving r
// at the start of the payload. name names the input in errors.
func ReadRPM(r io.Reader, name string) (p *RPM, err error) {
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
	pkg, err := rpm.Read(fullReader{io.MultiReader(&pre, br)})
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%s: %w: truncated before the end of the header", name, ErrBadRPM)
		}
		return nil, fmt.Errorf("%s: %w: %v", name, ErrBadRPM, err)
	}
	p = &RPM{Name: name, hdr: &pkg.Header, br: br}
	if p.str(tagName) == "" {
		return nil, fmt.Errorf("%s: %w: header has no package name", name, ErrBadRPM)
	}
	if p.str(tagVersion) == "" {
		return nil, fmt.Errorf("%s: %w: header has no version", name, ErrBadRPM)
	}
	if p.files, err = p.readFiles(); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrBadRPM, err)
	}
	return p, nil
}

func (p *RPM) tag(id int) *rpm.Tag { return p.hdr.GetTag(id) }

func (p *RPM) has(id int) bool { return p.tag(id) != nil }

// str is a STRING, I18NSTRING (first value) or the first element of a
// STRING_ARRAY tag; "" if absent.
func (p *RPM) str(id int) string {
	s := p.tag(id).StringSlice()
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func (p *RPM) strs(id int) []string { return p.tag(id).StringSlice() }

func (p *RPM) ints(id int) []int64 { return p.tag(id).Int64Slice() }

func (p *RPM) int(id int) (int64, bool) {
	v := p.ints(id)
	if len(v) == 0 {
		return 0, false
	}
	return v[0], true
}

// Name, Version, Release and Arch are the package's identity in the header.
func (p *RPM) PkgName() string { return p.str(tagName) }
func (p *RPM) Version() string { return p.str(tagVersion) }
func (p *RPM) Release() string { return p.str(tagRelease) }
func (p *RPM) Arch() string    { return p.str(tagArch) }

// Epoch returns the epoch and whether the header has one.
func (p *RPM) Epoch() (int64, bool) { return p.int(tagEpoch) }

// BuildTime is the header's build time in Unix seconds (0 if absent).
func (p *RPM) BuildTime() int64 {
	v, _ := p.int(tagBuildTime)
	return v
}

// NEVRA is name-[epoch:]version-release.arch, as rpm prints it.
func (p *RPM) NEVRA() string {
	e := ""
	if ep, ok := p.Epoch(); ok {
		e = fmt.Sprintf("%d:", ep)
	}
	return fmt.Sprintf("%s-%s%s-%s.%s", p.PkgName(), e, p.Version(), p.Release(), p.Arch())
}

// readFiles builds the file list from the header's parallel arrays,
// checking that every array has one value per file.
func (p *RPM) readFiles() ([]rpmFile, error) {
	var paths []string
	if p.has(tagBaseNames) {
		base := p.strs(tagBaseNames)
		dirs := p.strs(tagDirNames)
		idx := p.ints(tagDirIndexes)
		if len(idx) != len(base) {
			return nil, fmt.Errorf("header has %d file names but %d directory indexes", len(base), len(idx))
		}
		for i, b := range base {
			if idx[i] < 0 || idx[i] >= int64(len(dirs)) {
				return nil, fmt.Errorf("file %q: directory index %d out of range", b, idx[i])
			}
			paths = append(paths, dirs[idx[i]]+b)
		}
	} else {
		paths = p.strs(tagOldFilenames)
	}
	n := len(paths)
	if n == 0 {
		return nil, nil
	}
	ints := func(id int, name string, need bool) ([]int64, error) {
		v := p.ints(id)
		if v == nil && !need {
			return nil, nil
		}
		if len(v) != n {
			return nil, fmt.Errorf("header has %d files but %d %s", n, len(v), name)
		}
		return v, nil
	}
	strs := func(id int, name string, need bool) ([]string, error) {
		v := p.strs(id)
		if v == nil && !need {
			return nil, nil
		}
		if len(v) != n {
			return nil, fmt.Errorf("header has %d files but %d %s", n, len(v), name)
		}
		return v, nil
	}
	var err error
	var sizes, modes, mtimes, rdevs, flags, devs, inodes []int64
	var digests, links, users, groups, caps []string
	if p.has(tagLongFileSizes) {
		sizes, err = ints(tagLongFileSizes, "file sizes", true)
	} else {
		sizes, err = ints(tagFileSizes, "file sizes", true)
	}
	if err != nil {
		return nil, err
	}
	for _, a := range []struct {
		dst  *[]int64
		id   int
		name string
		need bool
	}{
		{&modes, tagFileModes, "file modes", true},
		{&mtimes, tagFileMtimes, "file mtimes", false},
		{&rdevs, tagFileRdevs, "device numbers", false},
		{&flags, tagFileFlags, "file flags", false},
		{&devs, tagFileDevices, "file devices", false},
		{&inodes, tagFileInodes, "file inodes", false},
	} {
		if *a.dst, err = ints(a.id, a.name, a.need); err != nil {
			return nil, err
		}
	}
	for _, a := range []struct {
		dst  *[]string
		id   int
		name string
		need bool
	}{
		{&digests, tagFileDigests, "file digests", false},
		{&links, tagFileLinkTos, "link targets", false},
		{&users, tagFileUserName, "file owners", true},
		{&groups, tagFileGroupName, "file groups", true},
		{&caps, tagFileCaps, "file capabilities", false},
	} {
		if *a.dst, err = strs(a.id, a.name, a.need); err != nil {
			return nil, err
		}
	}
	at := func(v []int64, i int) int64 {
		if v == nil {
			return 0
		}
		return v[i]
	}
	sat := func(v []string, i int) string {
		if v == nil {
			return ""
		}
		return v[i]
	}
	files := make([]rpmFile, n)
	for i := range files {
		if sizes[i] < 0 {
			return nil, fmt.Errorf("file %q: negative size", paths[i])
		}
		files[i] = rpmFile{
			Index:    i,
			Path:     paths[i],
			Mode:     uint32(modes[i]) & 0xffff,
			Size:     sizes[i],
			Mtime:    at(mtimes, i),
			Rdev:     uint32(at(rdevs, i)),
			Digest:   strings.ToLower(sat(digests, i)),
			LinkTo:   sat(links, i),
			Flags:    uint32(at(flags, i)),
			User:     users[i],
			Group:    groups[i],
			Dev:      uint32(at(devs, i)),
			Inode:    uint32(at(inodes, i)),
			Caps:     sat(caps, i),
			HasInode: inodes != nil,
		}
	}
	return files, nil
}

// digestHash gives a hash for the header's file digest algorithm
// (RPMTAG_FILEDIGESTALGO; absent means MD5).
func (p *RPM) digestHash() (func() hash.Hash, error) {
	algo, ok := p.int(tagFileDigestAlgo)
	if !ok {
		algo = 1
	}
	return hashAlgo(algo)
}

func hashAlgo(algo int64) (func() hash.Hash, error) {
	switch algo {
	case 1:
		return md5.New, nil
	case 2:
		return sha1.New, nil
	case 8:
		return sha256.New, nil
	case 9:
		return sha512.New384, nil
	case 10:
		return sha512.New, nil
	case 11:
		return sha256.New224, nil
	}
	return nil, fmt.Errorf("unknown digest algorithm %d", algo)
}

// Payload returns the decompressed payload (a cpio archive) and its
// compression name. The returned reader checks the payload digest of the
// header, if any, when it reaches the end of the compressed stream. Its
// errors do not name the input: the caller's wrapping does.
func (p *RPM) Payload() (io.ReadCloser, string, error) {
	format := p.str(tagPayloadFormat)
	if format != "" && format != "cpio" {
		return nil, "", fmt.Errorf("%s: %w: payload format %q is not cpio", p.Name, ErrBadRPM, format)
	}
	comp := p.str(tagPayloadCompressor)
	if comp == "" {
		comp = "gzip"
	}
	var src io.Reader = p.br
	var check func() error
	if d := p.strs(tagPayloadDigest); len(d) > 0 {
		algo, ok := p.int(tagPayloadDigestAlgo)
		if !ok {
			algo = 8
		}
		newHash, err := hashAlgo(algo)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w: payload digest: %v", p.Name, ErrBadRPM, err)
		}
		h := newHash()
		src = io.TeeReader(p.br, h)
		want := strings.ToLower(d[0])
		check = func() error {
			// Drain what the decompressor did not need (padding).
			if _, err := io.Copy(h, p.br); err != nil {
				return err
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != want {
				return fmt.Errorf("%w: payload digest %s, header says %s", ErrBadRPM, got, want)
			}
			return nil
		}
	}
	rc, err := decompress(src, comp)
	if err != nil {
		return nil, comp, fmt.Errorf("%s: payload: %w", p.Name, err)
	}
	return &payloadReader{rc: rc, check: check}, comp, nil
}

type payloadReader struct {
	rc    io.ReadCloser
	check func() error
	done  bool
	err   error // sticky: returned by every Read after the end
}

func (r *payloadReader) Read(b []byte) (int, error) {
	if r.done {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	n, err := r.rc.Read(b)
	if err == io.EOF {
		r.done = true
		if r.check != nil {
			// Sticky, so that a reader that drops an error coming with
			// data (io.ReadFull) still sees it on its next Read.
			r.err = r.check()
			if r.err != nil {
				return n, r.err
			}
		}
	} else if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: payload truncated", ErrBadRPM)
		} else {
			err = fmt.Errorf("%w: payload: %v", ErrBadRPM, err)
		}
		r.done, r.err = true, err
	}
	return n, err
}

func (r *payloadReader) Close() error { return r.rc.Close() }

// Limits on an RPM header, as in the rpm library we hand it to.
const (
	maxHeaderTags = 1 << 16
	maxHeaderData = 32 << 20
)

func copyN(dst *bytes.Buffer, r io.Reader, n int64) error {
	m, err := io.CopyN(dst, r, n)
	if err == nil && m != n {
		err = io.ErrUnexpectedEOF
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// checkHeader reads one header structure (intro, index, data store and,
// for the signature, padding to 8 bytes) from r into dst, checking that
// every index entry's values fit in the data store.
func checkHeader(dst *bytes.Buffer, r io.Reader, pad bool) error {
	start := dst.Len()
	if err := copyN(dst, r, 16); err != nil {
		return fmt.Errorf("truncated")
	}
	intro := dst.Bytes()[start:]
	if intro[0] != 0x8e || intro[1] != 0xad || intro[2] != 0xe8 {
		return fmt.Errorf("bad magic % x", intro[:3])
	}
	count := binary.BigEndian.Uint32(intro[8:12])
	size := binary.BigEndian.Uint32(intro[12:16])
	if count == 0 || count > maxHeaderTags {
		return fmt.Errorf("%d tags", count)
	}
	if size > maxHeaderData {
		return fmt.Errorf("data store of %d bytes", size)
	}
	istart := dst.Len()
	if err := copyN(dst, r, int64(count)*16); err != nil {
		return fmt.Errorf("truncated in the index")
	}
	index := dst.Bytes()[istart:]
	for i := 0; i < int(count); i++ {
		e := index[i*16 : i*16+16]
		typ := binary.BigEndian.Uint32(e[4:8])
		off := uint64(binary.BigEndian.Uint32(e[8:12]))
		n := uint64(binary.BigEndian.Uint32(e[12:16]))
		var need uint64
		switch typ {
		case 0:
			continue
		case 1, 2, 7: // char, int8, binary
			need = n
		case 3:
			need = 2 * n
		case 4:
			need = 4 * n
		case 5:
			need = 8 * n
		case 6, 8, 9: // string, string array, i18n string: a NUL each at least
			need = n
		default:
			return fmt.Errorf("tag %d: unknown type %d", binary.BigEndian.Uint32(e[0:4]), typ)
		}
		if n == 0 || off+need > uint64(size) {
			return fmt.Errorf("tag %d: %d values at offset %d overrun the %d-byte data store", binary.BigEndian.Uint32(e[0:4]), n, off, size)
		}
	}
	n := int64(size)
	if pad {
		n += int64((8 - size%8) % 8)
	}
	if err := copyN(dst, r, n); err != nil {
		return fmt.Errorf("truncated in the data store")
	}
	return nil
}
