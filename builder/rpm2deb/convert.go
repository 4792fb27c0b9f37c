package rpm2deb

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/builder/rpm"
	"github.com/ingotfleet/ingot/builder/rpm2deb/debmap"
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
	defer func() { _ = f.Close() }() // read-only
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
	p      *rpm.Package
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
	// openPayload opens the decompressed payload: p.Payload, or a
	// test's stand-in.
	openPayload func() (io.ReadCloser, string, error)
}

func (c *converter) run(ctx context.Context, r io.Reader) (*Report, error) {
	p, err := rpm.Read(r, c.name)
	if err != nil {
		return nil, err
	}
	return c.convert(ctx, p)
}

func (c *converter) convert(ctx context.Context, p *rpm.Package) (*Report, error) {
	c.p = p
	if c.openPayload == nil {
		c.openPayload = p.Payload
	}
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
	c.pkg = debmap.DebName(p.PkgName())
	if c.pkg != p.PkgName() {
		c.rep.add(Approximated, "Name", p.PkgName(), c.pkg, "lowercased, invalid characters mapped")
	} else {
		c.rep.add(Mapped, "Name", p.PkgName(), c.pkg, "")
	}
	ep, hasEp := p.Epoch()
	var notes []string
	c.ver, notes = debmap.DebVersion(ep, hasEp, p.Version(), p.Release())
	evr := p.Version() + "-" + p.Release()
	if hasEp {
		evr = fmt.Sprintf("%d:%s", ep, evr)
	}
	if len(notes) > 0 {
		c.rep.add(Approximated, "Version", evr, c.ver, strings.Join(notes, "; "))
	} else {
		c.rep.add(Mapped, "Version", evr, c.ver, "")
	}
	arch, ok := debmap.DebArch(p.Arch())
	if !ok {
		return fmt.Errorf("%s: unknown architecture %q", c.name, p.Arch())
	}
	c.arch = arch
	c.rep.add(Mapped, "Architecture", p.Arch(), arch, "")
	c.rep.Package, c.rep.Version, c.rep.Architecture = c.pkg, c.ver, arch
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
	entries, err := readChangelog(c.p)
	if err != nil {
		return err
	}
	maint, _, _, _ := c.maintainer()
	if len(entries) == 0 {
		entries = []debmap.ChangelogEntry{{Time: c.clamp, Name: maint, Text: "- Converted from " + path.Base(c.name) + ", which has no changelog."}}
		c.rep.add(Approximated, "changelog", "(none)", "one entry", "the RPM has no changelog; Debian packages need one")
	}
	ep, hasEp := c.p.Epoch()
	text, notes := debmap.WriteChangelog(entries, debmap.ChangelogOptions{Package: c.pkg, Version: c.ver, Epoch: ep, HasEpoch: hasEp, Maintainer: maint})
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
	license := debmap.SanitizeLine(c.p.Str(rpm.TagLicense))
	var b strings.Builder
	fmt.Fprintf(&b, "%s was converted from the RPM %s by ingot rpm2deb.\n\nLicense (from the RPM header): %s\n",
		c.pkg, c.p.NEVRA(), orDefault(license, "unknown"))
	for _, f := range []struct{ name, val string }{{"Vendor", c.p.Str(rpm.TagVendor)}, {"Packager", c.p.Str(rpm.TagPackager)}, {"Upstream", c.p.Str(rpm.TagURL)}} {
		if v := strings.TrimSpace(debmap.SanitizeLine(f.val)); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", f.name, v)
		}
	}
	var other []string
	first := true
	for _, t := range debmap.ParseLicense(license) {
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
// else Vendor, made a valid "Name <address>" by debmap.DebContact; which
// of them it came from, as it was, and what DebContact changed.
func (c *converter) maintainer() (contact, src, raw, note string) {
	for _, f := range []struct{ src, val string }{
		{"--maintainer", c.opts.Maintainer},
		{"Packager", c.p.Str(rpm.TagPackager)},
		{"Vendor", c.p.Str(rpm.TagVendor)},
	} {
		if contact, note := debmap.DebContact(f.val); contact != "" {
			return contact, f.src, f.val, note
		}
	}
	return "Unknown <" + debmap.UnknownAddress + ">", "(none)", "", "no Packager or Vendor"
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
