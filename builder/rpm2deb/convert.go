package rpm2deb

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/atomicfile"
)

// Options control a conversion.
type Options struct {
	// OutDir receives the .deb (default: the current directory).
	OutDir string
	// Compression of control.tar and data.tar (default xz).
	Compression Compression
	// SourceDateEpoch, when set, is the latest mtime in the .deb (and the
	// time of every generated member); otherwise the RPM's build time is.
	SourceDateEpoch *int64
	// Resolver resolves file and soname dependencies; nil leaves them
	// unresolved (listed in the report).
	Resolver Resolver
	// Strict makes unsupported scriptlets (triggers, %pretrans,
	// %posttrans, Lua, file triggers) and dependencies the Resolver could
	// not resolve fatal.
	Strict bool
	// Maintainer overrides the Maintainer taken from Packager or Vendor.
	Maintainer string
	// TempDir holds the payload spool (default os.TempDir()).
	TempDir string
	Log     *slog.Logger
}

// ErrStrict is wrapped when Strict refuses a conversion.
var ErrStrict = errors.New("rpm2deb: refused in strict mode")

func unixTime(s int64) time.Time { return time.Unix(s, 0).UTC() }

// Convert converts the RPM at rpmPath into a .deb in opts.OutDir and
// returns the report. On any error no output file is left behind.
func Convert(ctx context.Context, rpmPath string, opts Options) (*Report, error) {
	f, err := os.Open(rpmPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &converter{opts: opts, name: rpmPath}
	if c.opts.Log == nil {
		c.opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	rep, err := c.run(ctx, f)
	if err != nil {
		return nil, err
	}
	return rep, nil
}

type converter struct {
	opts   Options
	name   string
	p      *RPM
	rep    *Report
	clamp  int64
	pkg    string
	ver    string
	arch   string
	files  []*debFile
	byPath map[string]*debFile
	caps   map[string]string
	conf   []string
	spool  *os.File
}

func (c *converter) run(ctx context.Context, r io.Reader) (*Report, error) {
	p, err := ReadRPM(r, c.name)
	if err != nil {
		return nil, err
	}
	return c.convert(ctx, p)
}

func (c *converter) convert(ctx context.Context, p *RPM) (*Report, error) {
	c.p = p
	c.rep = &Report{Input: c.name, RPM: p.NEVRA()}
	c.clamp = p.BuildTime()
	if c.opts.SourceDateEpoch != nil {
		c.clamp = *c.opts.SourceDateEpoch
	}
	if err := c.identity(); err != nil {
		return nil, err
	}
	spool, err := os.CreateTemp(c.opts.TempDir, "rpm2deb-spool-")
	if err != nil {
		return nil, err
	}
	c.spool = spool
	defer func() { // a scratch file: nothing to keep, nothing to report
		_ = spool.Close()
		_ = os.Remove(spool.Name())
	}()
	if err := c.readPayload(ctx); err != nil {
		return nil, err
	}
	if err := c.docs(); err != nil {
		return nil, err
	}
	sort.Slice(c.files, func(i, j int) bool { return images.ComparePaths(c.files[i].Path, c.files[j].Path) < 0 })
	control, err := c.control()
	if err != nil {
		return nil, err
	}
	members, err := c.controlMembers(control)
	if err != nil {
		return nil, err
	}
	members = c.finishMembers(members)
	if c.opts.Strict {
		var bad []string
		for _, it := range c.rep.Items {
			if it.Action == Unsupported || (it.Action == Unresolved && c.opts.Resolver != nil) {
				bad = append(bad, it.What+" "+it.From)
			}
		}
		if len(bad) > 0 {
			return nil, fmt.Errorf("%s: %w: %s", c.name, ErrStrict, strings.Join(bad, "; "))
		}
	}
	out, err := c.write(ctx, members)
	if err != nil {
		return nil, err
	}
	c.rep.Output = out
	return c.rep, nil
}

// identity maps name, version and architecture.
func (c *converter) identity() error {
	p := c.p
	c.pkg = DebName(p.PkgName())
	if c.pkg != p.PkgName() {
		c.rep.add(Approximated, "Name", p.PkgName(), c.pkg, "lowercased, invalid characters mapped")
	} else {
		c.rep.add(Mapped, "Name", p.PkgName(), c.pkg, "")
	}
	ep, hasEp := p.Epoch()
	var notes []string
	c.ver, notes = DebVersion(ep, hasEp, p.Version(), p.Release())
	evr := p.Version() + "-" + p.Release()
	if hasEp {
		evr = fmt.Sprintf("%d:%s", ep, evr)
	}
	if len(notes) > 0 {
		c.rep.add(Approximated, "Version", evr, c.ver, strings.Join(notes, "; "))
	} else {
		c.rep.add(Mapped, "Version", evr, c.ver, "")
	}
	arch, ok := DebArch(p.Arch())
	if !ok {
		return fmt.Errorf("%s: unknown architecture %q", c.name, p.Arch())
	}
	c.arch = arch
	c.rep.add(Mapped, "Architecture", p.Arch(), arch, "")
	c.rep.Package, c.rep.Version, c.rep.Architecture = c.pkg, c.ver, arch
	return nil
}

func fileType(mode uint32) (images.Type, bool) {
	switch mode & sIFMT {
	case sIFREG:
		return images.TypeFile, true
	case sIFDIR:
		return images.TypeDir, true
	case sIFLNK:
		return images.TypeSymlink, true
	case sIFCHR:
		return images.TypeChar, true
	case sIFBLK:
		return images.TypeBlock, true
	case sIFIFO:
		return images.TypeFifo, true
	case sIFSOCK:
		return images.TypeSocket, true
	}
	return 0, false
}

// readPayload reads the cpio payload, checks it against the header and
// spools file contents; then builds the data archive's file list.
func (c *converter) readPayload(ctx context.Context) error {
	p := c.p
	hf := p.files
	index := map[string]int{}
	clean := make([]string, len(hf))
	for i, f := range hf {
		cp, err := images.CleanPath(f.Path)
		if err != nil {
			return fmt.Errorf("%s: header file %d %q: %w", c.name, i, f.Path, err)
		}
		if !strings.HasPrefix(f.Path, "/") || cp == "." {
			return fmt.Errorf("%s: header file %d %q: %w: not an absolute path below /", c.name, i, f.Path, images.ErrUnsafePath)
		}
		if _, dup := index[cp]; dup {
			return fmt.Errorf("%s: header lists %q twice", c.name, f.Path)
		}
		if _, ok := fileType(f.Mode); !ok {
			return fmt.Errorf("%s: header file %q: unknown file type in mode %o", c.name, f.Path, f.Mode)
		}
		index[cp] = i
		clean[i] = cp
	}
	// Hardlink sets: regular files sharing (device, inode). rpm writes the
	// content once, with the set's last member in header order.
	sets := map[[2]uint32][]int{}
	for i, f := range hf {
		if f.Mode&sIFMT == sIFREG && f.HasInode && f.Flags&fileGhost == 0 {
			k := [2]uint32{f.Dev, f.Inode}
			sets[k] = append(sets[k], i)
		}
	}
	linkSet := map[int][]int{}
	for _, s := range sets {
		if len(s) > 1 {
			for _, i := range s {
				linkSet[i] = s
			}
		}
	}
	newHash, err := p.digestHash()
	if err != nil {
		return fmt.Errorf("%s: %w: %v", c.name, ErrBadRPM, err)
	}
	payload, comp, err := p.Payload()
	if err != nil {
		return err
	}
	defer payload.Close()
	c.rep.add(Mapped, "Payload", comp+" cpio", "data.tar"+c.opts.Compression.ext(), "")
	strippedSize := func(ix int) (int64, error) {
		if ix < 0 || ix >= len(hf) {
			return 0, fmt.Errorf("file index %d out of range (header has %d files)", ix, len(hf))
		}
		f := hf[ix]
		switch f.Mode & sIFMT {
		case sIFREG:
			if s := linkSet[ix]; len(s) > 1 && s[len(s)-1] != ix {
				return 0, nil
			}
			return f.Size, nil
		case sIFLNK:
			return f.Size, nil
		}
		return 0, nil
	}
	cr := newCpioReader(payload, strippedSize)
	seen := make([]bool, len(hf))
	offs := make([]int64, len(hf))
	md5s := make([]string, len(hf))
	hasContent := make([]bool, len(hf))
	var spoolOff int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: payload: %w", c.name, err)
		}
		ix := h.Index
		if ix < 0 {
			cp, err := images.CleanPath(h.Name)
			if err != nil {
				return fmt.Errorf("%s: payload member %q: %w", c.name, h.Name, err)
			}
			if strings.HasPrefix(h.Name, "/") {
				return fmt.Errorf("%s: payload member %q: %w: absolute path", c.name, h.Name, images.ErrUnsafePath)
			}
			i, ok := index[cp]
			if !ok {
				return fmt.Errorf("%s: payload member %q is not in the header's file list", c.name, h.Name)
			}
			ix = i
		} else if ix >= len(hf) {
			return fmt.Errorf("%s: payload member index %d out of range", c.name, ix)
		}
		if seen[ix] {
			return fmt.Errorf("%s: payload holds %q twice", c.name, hf[ix].Path)
		}
		seen[ix] = true
		f := hf[ix]
		if f.Mode&sIFMT != sIFREG {
			continue // attributes and link targets come from the header
		}
		want := f.Size
		if s := linkSet[ix]; len(s) > 1 && h.Size == 0 {
			continue // another member of the set carries the content
		}
		if h.Size != want {
			return fmt.Errorf("%s: payload member %q has %d bytes, header says %d", c.name, f.Path, h.Size, want)
		}
		md := md5.New()
		var dh hash.Hash
		var w io.Writer = md
		if f.Digest != "" {
			dh = newHash()
			w = io.MultiWriter(md, dh)
		}
		n, err := io.Copy(io.MultiWriter(c.spool, w), cr)
		if err != nil {
			return fmt.Errorf("%s: payload member %q: %w", c.name, f.Path, err)
		}
		if n != want {
			return fmt.Errorf("%s: %w: payload member %q truncated", c.name, ErrBadRPM, f.Path)
		}
		if dh != nil && hex.EncodeToString(dh.Sum(nil)) != f.Digest {
			return fmt.Errorf("%s: %w: %q: content digest differs from the header's", c.name, ErrBadRPM, f.Path)
		}
		md5s[ix] = hex.EncodeToString(md.Sum(nil))
		offs[ix] = spoolOff
		hasContent[ix] = true
		spoolOff += n
		for _, j := range linkSet[ix] {
			md5s[j], offs[j], hasContent[j] = md5s[ix], offs[ix], true
		}
	}
	// Drain to the end so the payload digest is checked.
	if _, err := io.Copy(io.Discard, payload); err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	return c.buildFiles(clean, seen, offs, md5s, hasContent, linkSet)
}

func (c *converter) clampTime(t int64) int64 {
	if t > c.clamp || t < 0 {
		return c.clamp
	}
	return t
}

func (c *converter) buildFiles(clean []string, seen []bool, offs []int64, md5s []string, hasContent []bool, linkSet map[int][]int) error {
	hf := c.p.files
	c.byPath = map[string]*debFile{}
	c.caps = map[string]string{}
	order := make([]int, len(hf))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return images.ComparePaths(clean[order[a]], clean[order[b]]) < 0 })
	firstOfSet := map[int]string{}
	paths := make(map[string]bool, len(clean))
	for _, p := range clean {
		paths[p] = true
	}
	for _, i := range order {
		f := hf[i]
		cp := clean[i]
		if f.Flags&fileGhost != 0 {
			c.rep.add(Dropped, "%ghost", f.Path, "", "not in the payload; dpkg does not own it")
			continue
		}
		t, _ := fileType(f.Mode)
		if !seen[i] {
			return fmt.Errorf("%s: %w: %q is in the header but not in the payload", c.name, ErrBadRPM, f.Path)
		}
		if why := pythonBytecode(cp, t, paths); why != "" {
			// Before a hardlink set's first member is chosen: the next
			// member kept carries the content.
			c.rep.add(Dropped, "bytecode", f.Path, "", why)
			continue
		}
		df := &debFile{
			Path:  cp,
			Type:  t,
			Mode:  f.Mode & 0o7777,
			User:  f.User,
			Group: f.Group,
			Mtime: c.clampTime(f.Mtime),
		}
		switch t {
		case images.TypeFile:
			if !hasContent[i] && f.Size == 0 {
				hasContent[i], md5s[i] = true, md5hex(nil)
			}
			if !hasContent[i] {
				return fmt.Errorf("%s: %w: no content for %q in the payload", c.name, ErrBadRPM, f.Path)
			}
			df.Size, df.off, df.MD5 = f.Size, offs[i], md5s[i]
			if s := linkSet[i]; len(s) > 1 {
				if first, ok := firstOfSet[s[0]]; ok {
					df.Type, df.Link, df.Size = images.TypeHardlink, first, 0
					tgt := c.byPath[first]
					if tgt.Mode != df.Mode || tgt.User != df.User || tgt.Group != df.Group {
						c.rep.add(Approximated, "hardlink", f.Path, "/"+first,
							fmt.Sprintf("one inode: mode %04o %s:%s of %s applies, not %04o %s:%s", tgt.Mode, tgt.User, tgt.Group, "/"+first, df.Mode, df.User, df.Group))
					} else {
						c.rep.add(Mapped, "hardlink", f.Path, "/"+first, "")
					}
				} else {
					firstOfSet[s[0]] = cp
				}
			}
		case images.TypeSymlink:
			if f.LinkTo == "" {
				return fmt.Errorf("%s: %w: symlink %q has no target in the header", c.name, ErrBadRPM, f.Path)
			}
			df.Link = f.LinkTo
			if short, ok := shortenSymlink(cp, f.LinkTo); ok {
				df.Link = short
				c.rep.add(Approximated, "symlink", f.Path+" -> "+f.LinkTo, short, "same target, shortest relative form (lintian lengthy-symlink)")
			}
		case images.TypeChar, images.TypeBlock:
			df.Major, df.Minor = (f.Rdev>>8)&0xff, f.Rdev&0xff
		case images.TypeSocket:
			c.rep.add(Dropped, "socket", f.Path, "", "a .deb cannot hold a socket")
			continue
		}
		if f.Mode&0o6000 != 0 && t == images.TypeFile {
			c.rep.add(Mapped, "setuid/gid", f.Path, fmt.Sprintf("%04o", df.Mode), "")
		}
		if f.Caps != "" {
			c.caps[f.Path] = f.Caps
			c.rep.add(Approximated, "capability", f.Path+" "+f.Caps, "postinst setcap", "dpkg does not unpack extended attributes; postinst applies them (Depends: libcap2-bin)")
		}
		if f.Flags&fileConfig == 0 && strings.HasPrefix(cp, "etc/") && t == images.TypeFile {
			c.conf = append(c.conf, "/"+cp)
			c.rep.add(Approximated, "conffile", f.Path, "conffile", "added: not %config in the RPM, but Debian makes every file in /etc a conffile; dpkg keeps local changes where rpm would overwrite them")
		}
		if f.Flags&fileConfig != 0 {
			switch {
			case t != images.TypeFile && t != images.TypeHardlink:
				c.rep.add(Dropped, "%config", f.Path, "", "not a regular file: not a conffile")
			case !strings.HasPrefix(cp, "etc/"):
				c.rep.add(Approximated, "%config", f.Path, "", "outside /etc: not a conffile (Debian policy)")
			default:
				c.conf = append(c.conf, "/"+cp)
				if f.Flags&fileNoReplace != 0 {
					c.rep.add(Mapped, "%config", f.Path, "conffile", "")
				} else {
					c.rep.add(Approximated, "%config", f.Path, "conffile", "rpm replaces a changed file and saves .rpmsave; dpkg keeps it and asks")
				}
			}
		}
		if u := f.User; u != "root" {
			c.rep.add(Approximated, "owner", f.Path, f.User+":"+f.Group, "by name; dpkg looks the ids up when it unpacks, 0 if the user does not exist yet")
		} else if f.Group != "root" {
			c.rep.add(Approximated, "owner", f.Path, f.User+":"+f.Group, "by name; dpkg looks the ids up when it unpacks, 0 if the group does not exist yet")
		}
		if err := c.add(df); err != nil {
			return err
		}
	}
	return nil
}

// pythonBytecode says why the file at p (clean, as are the package's
// paths) is left out as Python bytecode, or "": a .pyc or .pyo file, or
// a __pycache__ directory or anything in one.
// Debian packages ship the .py sources only (lintian
// package-installs-python-bytecode); Python compiles them again when it
// imports them.
func pythonBytecode(p string, t images.Type, paths map[string]bool) string {
	base := path.Base(p)
	if base == "__pycache__" || strings.Contains(p, "/__pycache__/") || strings.HasPrefix(p, "__pycache__/") {
		return "__pycache__ is Python's bytecode cache; Debian packages ship sources only"
	}
	if t == images.TypeDir || (!strings.HasSuffix(base, ".pyc") && !strings.HasSuffix(base, ".pyo")) {
		return ""
	}
	src := p[:len(p)-1]
	if paths[src] {
		return "Python bytecode of /" + src + "; Debian packages ship sources only, Python compiles them again"
	}
	return "Python bytecode with no /" + src + " in the package: Debian packages ship sources only, so this module is lost"
}

// add puts a file in the data archive, with any parent directories the
// RPM does not list (0755 root:root).
// A path whose parent is a symlink or a file of the package is refused:
// unpacked, it would land wherever the symlink points.
func (c *converter) add(df *debFile) error {
	for _, dir := range parents(df.Path) {
		if p, ok := c.byPath[dir]; !ok {
			d := &debFile{Path: dir, Type: images.TypeDir, Mode: 0o755, User: "root", Group: "root", Mtime: c.clamp}
			c.byPath[dir] = d
			c.files = append(c.files, d)
		} else if p.Type != images.TypeDir {
			return fmt.Errorf("%s: %w: /%s is under /%s, which the package makes a %s", c.name, images.ErrUnsafePath, df.Path, dir, p.Type)
		}
	}
	c.byPath[df.Path] = df
	c.files = append(c.files, df)
	return nil
}

// parents returns ".", "a", "a/b" for "a/b/c".
func parents(p string) []string {
	out := []string{"."}
	if p == "." {
		return nil
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i])
		}
	}
	return out
}

// docs adds /usr/share/doc/<pkg>/changelog.Debian.gz and copyright.
func (c *converter) docs() error {
	entries, err := c.p.Changelog()
	if err != nil {
		return err
	}
	maint, _, _, _ := c.maintainer()
	if len(entries) == 0 {
		entries = []ChangelogEntry{{Time: c.clamp, Name: maint, Text: "- Converted from " + path.Base(c.name) + ", which has no changelog."}}
		c.rep.add(Approximated, "changelog", "(none)", "one entry", "the RPM has no changelog; Debian packages need one")
	}
	ep, hasEp := c.p.Epoch()
	text, notes := WriteChangelog(entries, ChangelogOptions{Package: c.pkg, Version: c.ver, Epoch: ep, HasEpoch: hasEp, Maintainer: maint})
	c.rep.Changelog = notes
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // a valid level
	_, _ = zw.Write([]byte(text))                           // into a bytes.Buffer: cannot fail
	_ = zw.Close()
	docdir := "usr/share/doc/" + c.pkg
	copyright := c.copyright()
	for _, d := range []struct {
		name string
		data []byte
	}{{"changelog.Debian.gz", gz.Bytes()}, {"copyright", []byte(copyright)}} {
		p := docdir + "/" + d.name
		if _, ok := c.byPath[p]; ok {
			return fmt.Errorf("%s: the RPM already has /%s, which the conversion writes", c.name, p)
		}
		if err := c.add(&debFile{Path: p, Type: images.TypeFile, Mode: 0o644, User: "root", Group: "root", Mtime: c.clamp, Size: int64(len(d.data)), content: d.data, MD5: md5hex(d.data)}); err != nil {
			return err
		}
	}
	return nil
}

// copyright writes /usr/share/doc/<pkg>/copyright: the RPM's License,
// Vendor, Packager and URL, and for each licence the License tag names
// that Debian ships, a pointer to its text in /usr/share/common-licenses.
func (c *converter) copyright() string {
	license := sanitizeLine(c.p.str(tagLicense))
	var b strings.Builder
	fmt.Fprintf(&b, "%s was converted from the RPM %s by ingot rpm2deb.\n\nLicense (from the RPM header): %s\n",
		c.pkg, c.p.NEVRA(), orDefault(license, "unknown"))
	for _, f := range []struct{ name, val string }{{"Vendor", c.p.str(tagVendor)}, {"Packager", c.p.str(tagPackager)}, {"Upstream", c.p.str(tagURL)}} {
		if v := strings.TrimSpace(sanitizeLine(f.val)); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", f.name, v)
		}
	}
	var other []string
	first := true
	for _, t := range ParseLicense(license) {
		if t.Common == "" {
			other = append(other, t.Name)
			continue
		}
		if first {
			b.WriteString("\nOn Debian systems the full text of these licenses is in /usr/share/common-licenses:\n")
			first = false
		}
		fmt.Fprintf(&b, " %s: /usr/share/common-licenses/%s\n", t.Name, t.Common)
		c.rep.add(Mapped, "License", t.Name, "/usr/share/common-licenses/"+t.Common, "pointer in copyright")
	}
	note := ""
	if len(other) > 0 {
		note = "no text in /usr/share/common-licenses for: " + strings.Join(other, ", ")
	}
	c.rep.add(Mapped, "License", orDefault(license, "(none)"), "/usr/share/doc/"+c.pkg+"/copyright", note)
	return b.String()
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// maintainer returns the Maintainer field: --maintainer, else Packager,
// else Vendor, made a valid "Name <address>" by DebContact; which of them
// it came from, as it was, and what DebContact changed.
func (c *converter) maintainer() (contact, src, raw, note string) {
	for _, f := range []struct{ src, val string }{
		{"--maintainer", c.opts.Maintainer},
		{"Packager", c.p.str(tagPackager)},
		{"Vendor", c.p.str(tagVendor)},
	} {
		if contact, note := DebContact(f.val); contact != "" {
			return contact, f.src, f.val, note
		}
	}
	return "Unknown <" + unknownAddress + ">", "(none)", "", "no Packager or Vendor"
}

// write assembles the .deb in a temporary file in OutDir and renames it
// into place.
func (c *converter) write(ctx context.Context, members []controlMember) (string, error) {
	ctl, err := compressed(c.opts.Compression, func(w io.Writer) error { return deb.WriteControlTar(w, members, c.clamp) })
	if err != nil {
		return "", fmt.Errorf("control.tar: %w", err)
	}
	dir := c.opts.OutDir
	if dir == "" {
		dir = "."
	}
	dataTmp, err := os.CreateTemp(c.opts.TempDir, "rpm2deb-data-")
	if err != nil {
		return "", err
	}
	defer func() {
		_ = dataTmp.Close() // scratch, read back already
		_ = os.Remove(dataTmp.Name())
	}()
	zw, err := newCompressor(dataTmp, c.opts.Compression)
	if err != nil {
		return "", err
	}
	if err := writeDataTar(ctx, zw, c.files, c.spool); err != nil {
		return "", fmt.Errorf("data.tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	dataSize, err := dataTmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", err
	}
	if _, err := dataTmp.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	verNoEpoch := c.ver
	if i := strings.IndexByte(verNoEpoch, ':'); i >= 0 {
		verNoEpoch = verNoEpoch[i+1:]
	}
	final := filepath.Join(dir, fmt.Sprintf("%s_%s_%s.deb", c.pkg, verNoEpoch, c.arch))
	out, err := atomicfile.Create(final, 0o644)
	if err != nil {
		return "", err
	}
	defer out.Abort()
	if err := deb.WriteDeb(out, c.opts.Compression.deb(), ctl, dataTmp, dataSize, c.clamp); err != nil {
		return "", fmt.Errorf("writing %s: %w", final, err)
	}
	if err := out.Commit(); err != nil {
		return "", err
	}
	return final, nil
}

// shortenSymlink returns the shortest relative form of a relative symlink
// target that climbs out of the link's directory and back down into it
// ("../../../../usr/bin/x" from usr/lib/.build-id/c8 is "../../../bin/x"),
// when that is shorter. The link's own parent directories are the
// package's, not symlinks, so the lexical form is the same target.
func shortenSymlink(link, target string) (string, bool) {
	if strings.HasPrefix(target, "/") || !strings.Contains(target, "..") {
		return "", false
	}
	dir := path.Join("/", path.Dir(link))
	abs := path.Join(dir, target)
	from := strings.Split(strings.Trim(dir, "/"), "/")
	to := strings.Split(strings.Trim(abs, "/"), "/")
	if dir == "/" {
		from = nil
	}
	if abs == "/" {
		to = nil
	}
	i := 0
	for i < len(from) && i < len(to) && from[i] == to[i] {
		i++
	}
	var parts []string
	for range from[i:] {
		parts = append(parts, "..")
	}
	parts = append(parts, to[i:]...)
	rel := strings.Join(parts, "/")
	if rel == "" {
		rel = "."
	}
	if len(rel) >= len(target) {
		return "", false
	}
	return rel, true
}
