package pkgbuild

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/builder/spec"
)

// Difference is the first way two sets of packages differ.
type Difference struct {
	Package string // the .deb's file name
	Path    string // "control/FIELD", "control.tar/FILE" or "data.tar/PATH"; "" for the whole file
	What    string // "content", "mode", "owner", "mtime", "type", "size", "only in the first build", …
	Cause   string // the likely cause, or "" when it cannot tell
}

func (d *Difference) String() string {
	s := d.Package
	if d.Path != "" {
		s += ": " + d.Path
	}
	s += " (" + d.What + ")"
	if d.Cause != "" {
		s += ": likely cause: " + d.Cause
	}
	return s
}

// keepBytes bounds the content kept in memory per entry for telling the
// cause of a difference.
const keepBytes = 4 << 20

// debEntry is one thing of a .deb that two builds must agree on.
type debEntry struct {
	path  string
	meta  string // type, mode, owner, link target, size
	mode  int64
	mtime int64
	sha   string
	data  []byte // content, when at most keepBytes
}

// readDeb lists a .deb's data entries, control files and control
// fields, in that order.
func readDeb(p string) ([]debEntry, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := deb.NewReader(f, filepath.Base(p))
	if err != nil {
		return nil, err
	}
	c, err := r.Control()
	if err != nil {
		return nil, err
	}
	d, err := r.Data()
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var out []debEntry
	for {
		h, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		e := debEntry{path: "data.tar/" + strings.TrimPrefix(h.Name, "./"), mode: h.Mode, mtime: h.ModTime.Unix(),
			meta: fmt.Sprintf("type %c mode %o owner %d:%d (%s:%s) link %q", h.Typeflag, h.Mode, h.Uid, h.Gid, h.Uname, h.Gname, h.Linkname)}
		if h.Typeflag == tar.TypeReg {
			hs := sha256.New()
			var keep bytes.Buffer
			w := io.Writer(hs)
			if h.Size <= keepBytes {
				w = io.MultiWriter(hs, &keep)
			}
			if _, err := io.Copy(w, d); err != nil {
				return nil, err
			}
			e.sha, e.data = hex.EncodeToString(hs.Sum(nil)), keep.Bytes()
		}
		out = append(out, e)
	}
	// The control fields and files come after the data: a difference
	// there (md5sums, Installed-Size) usually follows from one in the data.
	for _, n := range c.Names() {
		v := c.Get(n)
		out = append(out, debEntry{path: "control/" + n, sha: v, data: []byte(v)})
	}
	for _, n := range slices.Sorted(mapKeys(c.Files)) {
		cf := c.Files[n]
		h := sha256.Sum256(cf.Data)
		out = append(out, debEntry{path: "control.tar/" + n, meta: fmt.Sprintf("mode %o", cf.Mode), mode: cf.Mode, sha: hex.EncodeToString(h[:]), data: cf.Data})
	}
	return out, nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Compare compares two builds' packages (matched by file name) and
// returns the first difference, or nil when every .deb is byte for byte
// the same. varied is the environment of the second build, used to tell
// the cause.
func Compare(a, b []Output, varied Env) (*Difference, error) {
	byName := map[string]Output{}
	for _, o := range b {
		byName[o.Name] = o
	}
	for _, oa := range a {
		ob, ok := byName[oa.Name]
		if !ok {
			return &Difference{Package: oa.Name, What: "only in the first build"}, nil
		}
		delete(byName, oa.Name)
		if oa.SHA256 == ob.SHA256 {
			continue
		}
		d, err := compareDebs(oa.Path, ob.Path, varied)
		if err != nil {
			return nil, err
		}
		if d == nil {
			d = &Difference{What: "archive bytes (same entries)", Cause: "the .deb container: compression or ar headers"}
		}
		d.Package = oa.Name
		return d, nil
	}
	for _, n := range slices.Sorted(mapKeys(byName)) {
		return &Difference{Package: n, What: "only in the second build"}, nil
	}
	return nil, nil
}

func compareDebs(pa, pb string, varied Env) (*Difference, error) {
	ea, err := readDeb(pa)
	if err != nil {
		return nil, err
	}
	eb, err := readDeb(pb)
	if err != nil {
		return nil, err
	}
	for i := 0; i < max(len(ea), len(eb)); i++ {
		switch {
		case i >= len(ea):
			return &Difference{Path: eb[i].path, What: "only in the second build"}, nil
		case i >= len(eb):
			return &Difference{Path: ea[i].path, What: "only in the first build"}, nil
		}
		x, y := ea[i], eb[i]
		switch {
		case x.path != y.path:
			return &Difference{Path: x.path, What: "entry order or name (second build has " + y.path + ")",
				Cause: "file order: the build lists a directory without sorting it"}, nil
		case x.meta != y.meta:
			d := &Difference{Path: x.path, What: "metadata: " + x.meta + " vs " + y.meta}
			if x.mode != y.mode && (x.mode^y.mode)&^0o022 == 0 {
				d.What, d.Cause = fmt.Sprintf("mode %o vs %o", x.mode, y.mode), "umask: the build leaves a file's mode to the umask"
			} else if x.sha != y.sha {
				d.Cause = contentCause(x.data, y.data, varied)
			}
			return d, nil
		case x.sha != y.sha:
			return &Difference{Path: x.path, What: "content", Cause: contentCause(x.data, y.data, varied)}, nil
		case x.mtime != y.mtime:
			return &Difference{Path: x.path, What: "mtime", Cause: "time: an mtime not clamped to SOURCE_DATE_EPOCH"}, nil
		}
	}
	return nil, nil
}

// contentCause looks in the second build's bytes for a trace of what was
// varied.
func contentCause(a, b []byte, v Env) string {
	has := func(s string) bool { return s != "" && bytes.Contains(b, []byte(s)) && !bytes.Contains(a, []byte(s)) }
	switch {
	case has(v.BuildDir):
		return "build path: the file records the directory it was built in"
	case has(v.Hostname):
		return "hostname: the file records the build host's name"
	case has(" 2.6.") || has("Linux 2.6"):
		return "kernel version: the file records uname's release"
	case has(strings.TrimRight(v.TZ, "-+0123456789")):
		return "time zone: the file records a local time"
	case v.ClockOffset != "" && has(strconv.Itoa(shifted(v.ClockOffset).Year())):
		return "time: the file records the date of the build (the second build's clock ran " + v.ClockOffset + " ahead)"
	case v.CPUs > 0 && len(a) == len(b):
		return "unknown (same size: possibly ordering from parallelism, CPU count, or time)"
	}
	return "unknown: compare the two files (diffoscope)"
}

// shifted is now moved by a libfaketime day offset ("+398d").
func shifted(offset string) time.Time {
	days, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(offset, "+"), "d"))
	return time.Now().AddDate(0, 0, days)
}

// SameContent reports whether the package at newer has the content of
// the one at older but for timestamps and its version: the same control
// fields (Version and a version in Source aside), the same control files
// (the md5sums lines of changelogs aside) and the same data entries
// (mtimes and /usr/share/doc/*/changelog* aside). When not, why names
// the first difference.
func SameContent(older, newer string) (same bool, why string, err error) {
	ea, err := readDeb(older)
	if err != nil {
		return false, "", err
	}
	eb, err := readDeb(newer)
	if err != nil {
		return false, "", err
	}
	ea, eb = versionless(ea), versionless(eb)
	for i := 0; i < max(len(ea), len(eb)); i++ {
		switch {
		case i >= len(ea):
			return false, eb[i].path + " is new", nil
		case i >= len(eb):
			return false, ea[i].path + " is gone", nil
		}
		x, y := ea[i], eb[i]
		switch {
		case x.path != y.path:
			return false, fmt.Sprintf("%s where the old package has %s", y.path, x.path), nil
		case x.meta != y.meta:
			return false, fmt.Sprintf("%s: %s, was %s", x.path, y.meta, x.meta), nil
		case x.sha != y.sha:
			return false, x.path + ": content changed", nil
		}
	}
	return true, "", nil
}

// versionless drops what changes with the version alone.
func versionless(es []debEntry) []debEntry {
	var out []debEntry
	for _, e := range es {
		switch {
		case e.path == "control/Version", e.path == "control.tar/control":
			continue // the fields are compared one by one
		case e.path == "control/Source":
			n, _, _ := strings.Cut(string(e.data), " ")
			e.sha = n
		case e.path == "control.tar/md5sums":
			var keep []string
			for _, l := range strings.Split(string(e.data), "\n") {
				if !isChangelog(strings.TrimSpace(l[min(len(l), 34):])) {
					keep = append(keep, l)
				}
			}
			h := sha256.Sum256([]byte(strings.Join(keep, "\n")))
			e.sha = hex.EncodeToString(h[:])
		case strings.HasPrefix(e.path, "data.tar/") && isChangelog(strings.TrimPrefix(e.path, "data.tar/")):
			continue
		}
		e.mtime = 0
		out = append(out, e)
	}
	return out
}

func isChangelog(p string) bool {
	p = strings.TrimPrefix(p, "./")
	if !strings.HasPrefix(p, "usr/share/doc/") {
		return false
	}
	b := path.Base(p)
	return strings.HasPrefix(b, "changelog") && strings.Count(strings.TrimPrefix(p, "usr/share/doc/"), "/") == 1
}

// Check builds src twice from the same lock, the first time under Fixed
// into outA and the second under Varied into outB, and compares the
// packages: nil when they are byte for byte the same.
func Check(ctx context.Context, src *Source, l *spec.Lock, lockData []byte, paths []string, arch, outA, outB string, opts Options) (*Difference, error) {
	a, err := Build(ctx, src, l, lockData, paths, arch, outA, Fixed, opts)
	if err != nil {
		return nil, fmt.Errorf("first build: %w", err)
	}
	b, err := Build(ctx, src, l, lockData, paths, arch, outB, Varied, opts)
	if err != nil {
		return nil, fmt.Errorf("second build (varied): %w", err)
	}
	return Compare(a.Debs, b.Debs, Varied)
}
