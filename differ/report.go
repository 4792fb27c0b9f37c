package differ

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/view"
	"github.com/ingotfleet/ingot/internal/debversion"
)

// ReportVersion is the version of the report formats (text header, JSON
// "version"); it changes when a field changes meaning.
const ReportVersion = 1

// Options tune Diff.
type Options struct {
	Mtime        bool  // report mtime changes; by default a path whose only change is its mtime is counted, not shown
	Context      int   // lines of context around each hunk of a unified diff
	MaxDiffSize  int64 // files (and decompressed .gz contents) larger than this get no unified diff
	MaxDiffLines int   // a unified diff longer than this is cut, and the report says so
}

// DefaultOptions are the options of `ingot diff` without flags.
func DefaultOptions() Options {
	return Options{Context: 3, MaxDiffSize: 1 << 20, MaxDiffLines: 2000}
}

// Report is the result of comparing two images.
type Report struct {
	Version  int             `json:"version"`
	A        string          `json:"a"`
	B        string          `json:"b"`
	Summary  Summary         `json:"summary"`
	Packages []PackageChange `json:"packages"`
	Groups   []Group         `json:"groups"`
}

// Summary counts what a Report holds.
type Summary struct {
	Paths              int `json:"paths"` // paths that differ: added + removed + changed
	Added              int `json:"added"`
	Removed            int `json:"removed"`
	Changed            int `json:"changed"`
	MtimeOnlyIgnored   int `json:"mtime_only_ignored"`
	PackagesAdded      int `json:"packages_added"`
	PackagesRemoved    int `json:"packages_removed"`
	PackagesUpgraded   int `json:"packages_upgraded"`
	PackagesDowngraded int `json:"packages_downgraded"`
	Alerts             int `json:"alerts"` // setuid/setgid/sticky and capability changes
}

// Identical reports whether the images are the same (mtimes aside, unless asked).
func (r *Report) Identical() bool {
	return r.Summary.Paths == 0 && len(r.Packages) == 0
}

// PackageChange is a package added, removed, upgraded or downgraded.
type PackageChange struct {
	Name          string           `json:"name"`
	Change        string           `json:"change"` // added, removed, upgraded, downgraded
	Old           string           `json:"old,omitempty"`
	New           string           `json:"new,omitempty"`
	Changelog     []ChangelogEntry `json:"changelog,omitempty"` // upgraded: the entries after Old up to New; added: New's entry
	ChangelogNote string           `json:"changelog_note,omitempty"`
}

// Group holds the changed paths owned by one package; Package is "" for
// the paths no package owns.
type Group struct {
	Package string   `json:"package"`
	Changes []Change `json:"changes"`
}

// Change is one path that differs.
type Change struct {
	Kind    DeltaKind    `json:"kind"`
	Path    string       `json:"path"`             // "/" + images.Escape(path)
	Owners  []string     `json:"owners,omitempty"` // when more than one package owns the path
	Old     *EntryView   `json:"old,omitempty"`
	New     *EntryView   `json:"new,omitempty"`
	Attrs   []AttrChange `json:"attrs,omitempty"`
	Alerts  []string     `json:"alerts,omitempty"`
	Content *Content     `json:"content,omitempty"`
}

// AttrChange is one changed attribute, both sides as display text.
type AttrChange struct {
	Key string `json:"key"`
	Old string `json:"old"`
	New string `json:"new"`
}

// Content is what the report says about a changed file's content.
type Content struct {
	Gzip bool   `json:"gzip,omitempty"` // the diff is of the decompressed content
	Diff string `json:"diff,omitempty"` // unified diff
	Note string `json:"note,omitempty"` // why there is no diff, or that it was cut
}

// EntryView is an entry as the report shows it.
type EntryView struct {
	Type     string            `json:"type"`
	Mode     string            `json:"mode,omitempty"`
	UID      int               `json:"uid"`
	GID      int               `json:"gid"`
	Uname    string            `json:"uname,omitempty"`
	Gname    string            `json:"gname,omitempty"`
	Size     int64             `json:"size,omitempty"`
	SHA256   string            `json:"sha256,omitempty"`
	Link     string            `json:"link,omitempty"`     // symlink target, escaped
	Hardlink string            `json:"hardlink,omitempty"` // the path this is a hardlink of
	Device   string            `json:"device,omitempty"`   // "MAJOR,MINOR"
	Xattrs   map[string]string `json:"xattrs,omitempty"`   // display values (capabilities decoded)
	Mtime    int64             `json:"mtime"`
}

func displayPath(p string) string {
	if p == "." {
		return "/"
	}
	return "/" + images.Escape(p)
}

func viewEntry(m *images.Manifest, e *images.Entry) *EntryView {
	if e == nil {
		return nil
	}
	v := &EntryView{Type: e.Type.String()}
	if e.Type == images.TypeHardlink {
		v.Hardlink = displayPath(e.Link)
		if e = m.Resolve(e); e == nil {
			return v
		}
	}
	v.Mode = fmt.Sprintf("%04o", e.Mode)
	v.UID, v.GID, v.Uname, v.Gname = e.UID, e.GID, e.Uname, e.Gname
	v.Mtime = e.Mtime
	if e.Type == images.TypeFile {
		v.Size, v.SHA256 = e.Size, e.SHA256.String()
	}
	if e.Type == images.TypeSymlink {
		v.Link = images.Escape(e.Link)
	}
	if e.IsDevice() {
		v.Device = fmt.Sprintf("%d,%d", e.DevMajor, e.DevMinor)
	}
	for k, x := range e.Xattrs {
		if v.Xattrs == nil {
			v.Xattrs = map[string]string{}
		}
		v.Xattrs[images.Escape(k)] = xattrText(k, x)
	}
	return v
}

// xattrText shows an xattr value: capabilities decoded, printable values
// quoted, anything else in hex.
func xattrText(name, v string) string {
	if name == images.XattrCapability {
		if s, err := DecodeCapability([]byte(v)); err == nil {
			return s
		}
	}
	printable := true
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			printable = false
			break
		}
	}
	if printable {
		return strconv.Quote(v)
	}
	return fmt.Sprintf("0x%x", v)
}

// attrChanges turns a delta's keys into display pairs and alerts.
func attrChanges(a, b *images.Manifest, d *images.Delta) ([]AttrChange, []string) {
	ra, rb := d.Old, d.New
	var out []AttrChange
	var alerts []string
	for _, k := range d.Keys {
		var o, n string
		switch {
		case k == images.KeyHardlink:
			o, n = linkText(a, d.Path, d.OldLinks), linkText(b, d.Path, d.NewLinks)
		case k == "type":
			o, n = ra.Type.String(), rb.Type.String()
		case k == "mode":
			o, n = fmt.Sprintf("%04o", ra.Mode), fmt.Sprintf("%04o", rb.Mode)
			alerts = append(alerts, modeAlerts(ra.Mode, rb.Mode)...)
		case k == "uid":
			o, n = strconv.Itoa(ra.UID), strconv.Itoa(rb.UID)
		case k == "gid":
			o, n = strconv.Itoa(ra.GID), strconv.Itoa(rb.GID)
		case k == "uname":
			o, n = orNone(ra.Uname), orNone(rb.Uname)
		case k == "gname":
			o, n = orNone(ra.Gname), orNone(rb.Gname)
		case k == "size":
			o, n = strconv.FormatInt(ra.Size, 10), strconv.FormatInt(rb.Size, 10)
		case k == "sha256digest":
			o, n = digestOrNone(ra), digestOrNone(rb)
		case k == "link":
			o, n = images.Escape(ra.Link), images.Escape(rb.Link)
		case k == "device":
			o, n = deviceText(ra), deviceText(rb)
		case k == "time":
			o, n = timeText(ra.Mtime), timeText(rb.Mtime)
		case strings.HasPrefix(k, "xattr."):
			name := k[len("xattr."):]
			va, oka := ra.Xattrs[name]
			vb, okb := rb.Xattrs[name]
			o, n = "(none)", "(none)"
			if oka {
				o = xattrText(name, va)
			}
			if okb {
				n = xattrText(name, vb)
			}
			k = "xattr." + images.Escape(name)
			if name == images.XattrCapability {
				switch {
				case !oka:
					alerts = append(alerts, "capabilities added: "+n)
				case !okb:
					alerts = append(alerts, "capabilities removed: "+o)
				default:
					alerts = append(alerts, "capabilities changed: "+o+" -> "+n)
				}
			}
		default:
			o, n = "?", "?"
		}
		out = append(out, AttrChange{Key: k, Old: o, New: n})
	}
	return out, alerts
}

var specialBits = []struct {
	bit  uint32
	name string
}{{images.ModeSetuid, "setuid"}, {images.ModeSetgid, "setgid"}, {images.ModeSticky, "sticky"}}

// linkText says how path p is hardlinked in m: "a hardlink of /X" for a
// hardlink entry, "hardlinked as /Y, /Z" for the file others link to, or
// "not hardlinked" (an nlink count says less).
func linkText(m *images.Manifest, p string, others []string) string {
	if e := m.Lookup(p); e != nil && e.Type == images.TypeHardlink {
		return "a hardlink of " + displayPath(e.Link)
	}
	if len(others) == 0 {
		return "not hardlinked"
	}
	ds := make([]string, len(others))
	for i, o := range others {
		ds[i] = displayPath(o)
	}
	return "hardlinked as " + strings.Join(ds, ", ")
}

func modeAlerts(o, n uint32) []string {
	var alerts []string
	for _, s := range specialBits {
		switch {
		case o&s.bit == 0 && n&s.bit != 0:
			alerts = append(alerts, s.name+" added")
		case o&s.bit != 0 && n&s.bit == 0:
			alerts = append(alerts, s.name+" removed")
		}
	}
	return alerts
}

// entryAlerts flags what a new path brings that a reviewer must see.
func entryAlerts(e *images.Entry) []string {
	if e == nil {
		return nil
	}
	var alerts []string
	if e.Type != images.TypeDir { // sticky and setgid directories are routine
		for _, s := range specialBits {
			if e.Mode&s.bit != 0 {
				alerts = append(alerts, s.name)
			}
		}
	}
	if v, ok := e.Xattrs[images.XattrCapability]; ok {
		alerts = append(alerts, "capabilities: "+xattrText(images.XattrCapability, v))
	}
	return alerts
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func digestOrNone(e *images.Entry) string {
	if e.Type != images.TypeFile {
		return "(none)"
	}
	return e.SHA256.String()
}

func deviceText(e *images.Entry) string {
	if !e.IsDevice() {
		return "(none)"
	}
	return fmt.Sprintf("%d,%d", e.DevMajor, e.DevMinor)
}

func timeText(t int64) string {
	return strconv.FormatInt(t, 10) + " (" + time.Unix(t, 0).UTC().Format(time.RFC3339) + ")"
}

// Diff compares image a with image b.
func Diff(ctx context.Context, a, b view.View, opts Options) (*Report, error) {
	for _, s := range []view.View{a, b} {
		if err := s.Manifest().Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name(), err)
		}
	}
	d := &diffing{a: a, b: b, ma: a.Manifest(), mb: b.Manifest(), opts: opts,
		r: &Report{Version: ReportVersion, A: a.Name(), B: b.Name(), Packages: []PackageChange{}, Groups: []Group{}}}
	d.compare()
	// The dpkg databases, for package versions and the owners of the
	// paths that differ.
	need := make(map[string]bool, len(d.deltas))
	for _, dl := range d.deltas {
		need[dl.Path] = true
	}
	err := both(func() (err error) {
		d.dbA, err = loadDpkgDB(ctx, a, need)
		return err
	}, func() (err error) {
		d.dbB, err = loadDpkgDB(ctx, b, need)
		return err
	})
	if err != nil {
		return nil, err
	}
	d.r.Packages = packageChanges(d.dbA, d.dbB)
	d.chooseContents()
	if err := d.readContents(ctx); err != nil {
		return nil, err
	}
	d.changelogs()
	d.group()
	d.count()
	return d.r, nil
}

// diffing is one Diff under way, its steps in the order Diff takes them.
type diffing struct {
	a, b   view.View
	ma, mb *images.Manifest
	opts   Options
	r      *Report

	deltas     []images.Delta
	dbA, dbB   *dpkgDB
	wantA      map[string]bool   // paths whose contents to read from a
	wantB      map[string]bool   // ... from b
	logA, logB map[string]string // package → path of its changelog to read
	contA      map[string][]byte // what was kept of a's contents (changelogs)
	contB      map[string][]byte // ... of b's
	contents   map[string]*Content
}

// compare finds the paths that differ, dropping changes of mtime alone
// unless opts.Mtime.
func (d *diffing) compare() {
	deltas := images.Compare(d.ma, d.mb, images.CompareOptions{})
	kept := deltas[:0]
	for _, dl := range deltas {
		if !d.opts.Mtime && dl.Kind == Changed {
			dl.Keys = slices.DeleteFunc(dl.Keys, func(k string) bool { return k == "time" })
			if len(dl.Keys) == 0 {
				d.r.Summary.MtimeOnlyIgnored++
				continue
			}
		}
		kept = append(kept, dl)
	}
	d.deltas = kept
}

// chooseContents picks the contents to read: changed regular files small
// enough to diff, and the changelogs of changed packages (b's, and a's
// for a downgrade). Views that cache contents (view.Tar) forget the rest.
func (d *diffing) chooseContents() {
	d.wantA, d.wantB = map[string]bool{}, map[string]bool{}
	for _, dl := range d.deltas {
		if dl.Kind != Changed || !slices.Contains(dl.Keys, "sha256digest") {
			continue
		}
		ra, rb := dl.Old, dl.New
		if ra.Type == images.TypeFile && rb.Type == images.TypeFile && ra.Size <= d.opts.MaxDiffSize && rb.Size <= d.opts.MaxDiffSize {
			d.wantA[dl.Path], d.wantB[dl.Path] = true, true
		}
	}
	resA, resB := newResolver(d.ma), newResolver(d.mb)
	d.logA, d.logB = map[string]string{}, map[string]string{}
	for _, pc := range d.r.Packages {
		if pc.Change == "removed" {
			continue
		}
		if p := findChangelog(d.mb, resB, d.dbB.packages[pc.Name]); p != "" && d.mb.Lookup(p).Size <= maxChangelogSize {
			d.logB[pc.Name] = p
			d.wantB[p] = true
		}
		if pc.Change == "downgraded" {
			if p := findChangelog(d.ma, resA, d.dbA.packages[pc.Name]); p != "" && d.ma.Lookup(p).Size <= maxChangelogSize {
				d.logA[pc.Name] = p
				d.wantA[p] = true
			}
		}
	}
	for _, x := range []struct {
		s    view.View
		want map[string]bool
	}{{d.a, d.wantA}, {d.b, d.wantB}} {
		if f, ok := x.s.(interface{ Forget(keep map[string]bool) }); ok {
			f.Forget(x.want)
		}
	}
}

// readContents reads a's chosen contents first; then b's, each diffed
// as it arrives and a's side dropped, so that at most one side is held
// in memory. Only the changelogs are kept.
func (d *diffing) readContents(ctx context.Context) error {
	diffable := map[string]*images.Delta{}
	for i := range d.deltas {
		if dl := &d.deltas[i]; d.wantA[dl.Path] && d.wantB[dl.Path] {
			diffable[dl.Path] = dl
		}
	}
	keepA := map[string]bool{}
	for _, p := range d.logA {
		keepA[p] = true
	}
	keepB := map[string]bool{}
	for _, p := range d.logB {
		keepB[p] = true
	}
	contA, err := readAll(ctx, d.a, d.wantA, nil)
	if err != nil {
		return err
	}
	d.contents = map[string]*Content{}
	contB, err := readAll(ctx, d.b, d.wantB, func(p string, data []byte) bool {
		if dl, ok := diffable[p]; ok {
			d.contents[p] = contentDiff(p, dl.Old, dl.New, contA[p], data, d.opts)
			if !keepA[p] {
				delete(contA, p)
			}
		}
		return keepB[p]
	})
	if err != nil {
		return err
	}
	d.contA, d.contB = contA, contB
	return nil
}

// changelogs gives each changed package the changelog entries between
// its two versions.
func (d *diffing) changelogs() {
	for i := range d.r.Packages {
		pc := &d.r.Packages[i]
		switch pc.Change {
		case "removed":
			continue
		case "downgraded":
			pc.Changelog, pc.ChangelogNote = changelogEntries(d.logA[pc.Name], d.contA, pc.New, pc.Old)
			if pc.ChangelogNote == "" && len(pc.Changelog) > 0 {
				pc.ChangelogNote = "entries taken away by the downgrade"
			}
		default:
			pc.Changelog, pc.ChangelogNote = changelogEntries(d.logB[pc.Name], d.contB, pc.Old, pc.New)
		}
	}
}

// group turns each delta into a Change and groups the changes by the
// package that owns the path (unowned paths last), counting them.
func (d *diffing) group() {
	ma, mb, r := d.ma, d.mb, d.r
	groups := map[string][]Change{}
	for i := range d.deltas {
		dl := &d.deltas[i]
		c := Change{Kind: dl.Kind, Path: displayPath(dl.Path), Old: viewEntry(ma, ma.Lookup(dl.Path)), New: viewEntry(mb, mb.Lookup(dl.Path))}
		switch dl.Kind {
		case Added:
			c.Alerts = entryAlerts(dl.New)
			r.Summary.Added++
		case Removed:
			r.Summary.Removed++
		case Changed:
			c.Attrs, c.Alerts = attrChanges(ma, mb, dl)
			r.Summary.Changed++
			ra, rb := dl.Old, dl.New
			if slices.Contains(dl.Keys, images.KeySHA256) && ra.Type == images.TypeFile && rb.Type == images.TypeFile {
				if c.Content = d.contents[dl.Path]; c.Content == nil {
					c.Content = contentDiff(dl.Path, ra, rb, nil, nil, d.opts) // over the size cap
				}
			}
		}
		r.Summary.Alerts += len(c.Alerts)
		owners := d.dbB.owners[dl.Path]
		if dl.Kind == Removed || len(owners) == 0 {
			owners = d.dbA.owners[dl.Path]
		}
		g := ""
		if len(owners) > 0 {
			g = owners[0]
		}
		if len(owners) > 1 {
			c.Owners = owners
		}
		groups[g] = append(groups[g], c)
	}
	for _, g := range slices.Sorted(maps.Keys(groups)) {
		if g != "" {
			r.Groups = append(r.Groups, Group{Package: g, Changes: groups[g]})
		}
	}
	if u, ok := groups[""]; ok {
		r.Groups = append(r.Groups, Group{Package: "", Changes: u})
	}
}

// count fills in the summary's totals of paths and packages.
func (d *diffing) count() {
	r := d.r
	r.Summary.Paths = r.Summary.Added + r.Summary.Removed + r.Summary.Changed
	for _, pc := range r.Packages {
		switch pc.Change {
		case "added":
			r.Summary.PackagesAdded++
		case "removed":
			r.Summary.PackagesRemoved++
		case "upgraded":
			r.Summary.PackagesUpgraded++
		case "downgraded":
			r.Summary.PackagesDowngraded++
		}
	}
}

// maxChangelogSize bounds a compressed changelog the report reads.
const maxChangelogSize = 16 << 20

// both runs f and g at once and returns the first error.
func both(f, g func() error) error {
	var wg conc.WaitGroup // a panic in g is raised by Wait
	var errG error
	wg.Go(func() { errG = g() })
	errF := f()
	wg.Wait()
	if errF != nil {
		return errF
	}
	return errG
}

// readAll reads the files in want from s. Binaries are not kept (see
// binarySniffed). When use is given, it receives each content as it is
// read and says whether to keep it; otherwise everything is kept.
func readAll(ctx context.Context, s view.View, want map[string]bool, use func(p string, data []byte) bool) (map[string][]byte, error) {
	out := map[string][]byte{}
	if len(want) == 0 {
		return out, nil
	}
	br := bufio.NewReaderSize(nil, sniffSize)
	err := s.ReadFiles(ctx, slices.Sorted(maps.Keys(want)), func(p string, r io.Reader) error {
		// Binaries (a NUL byte in the first 8000 bytes, as git decides)
		// get no diff: keep a marker, not their bytes. .gz files are
		// binary on the outside and decided on their content.
		br.Reset(r)
		var data []byte
		if head, _ := br.Peek(sniffSize); !strings.HasSuffix(p, ".gz") && bytes.IndexByte(head, 0) >= 0 {
			data = binarySniffed
		} else {
			var err error
			if data, err = io.ReadAll(br); err != nil {
				return err
			}
		}
		if use == nil || use(p, data) {
			out[p] = data
		}
		return nil
	})
	if err != nil {
		return nil, err // sources name themselves in their errors
	}
	return out, nil
}

// sniffSize is how much of a file decides whether it is binary.
const sniffSize = 8000

// binarySniffed stands for the content of a file found to be binary; it is
// recognised by identity (sniffedBinary), never by value.
var binarySniffed = []byte("\x00binary")

func sniffedBinary(b []byte) bool {
	return len(b) == len(binarySniffed) && &b[0] == &binarySniffed[0]
}

// loadDpkgDB reads a source's dpkg status and file lists.
func loadDpkgDB(ctx context.Context, s view.View, need map[string]bool) (*dpkgDB, error) {
	m := s.Manifest()
	var paths []string
	for i := range m.Entries {
		if e := &m.Entries[i]; e.Type == images.TypeFile && isDpkgMeta(e.Path) {
			paths = append(paths, e.Path)
		}
	}
	files := map[string][]byte{}
	err := s.ReadFiles(ctx, paths, func(p string, r io.Reader) error {
		b, err := io.ReadAll(io.LimitReader(r, view.MaxKept))
		files[p] = b
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the dpkg database: %w", err)
	}
	db, err := readDpkgDB(m, files, need)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name(), err)
	}
	return db, nil
}

// packageChanges compares two package sets, sorted by name.
func packageChanges(a, b *dpkgDB) []PackageChange {
	out := []PackageChange{}
	names := slices.Sorted(maps.Keys(a.packages))
	for n := range b.packages {
		if _, ok := a.packages[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		pa, pb := a.packages[n], b.packages[n]
		switch {
		case pa == nil:
			out = append(out, PackageChange{Name: n, Change: "added", New: pb.Version})
		case pb == nil:
			out = append(out, PackageChange{Name: n, Change: "removed", Old: pa.Version})
		case debversion.CompareStrict(pa.Version, pb.Version) < 0:
			out = append(out, PackageChange{Name: n, Change: "upgraded", Old: pa.Version, New: pb.Version})
		case debversion.CompareStrict(pa.Version, pb.Version) > 0:
			out = append(out, PackageChange{Name: n, Change: "downgraded", Old: pa.Version, New: pb.Version})
		}
	}
	return out
}

// changelogEntries reads the changelog at path p (in files) and picks the
// entries after old up to new.
func changelogEntries(p string, files map[string][]byte, old, new string) ([]ChangelogEntry, string) {
	if p == "" {
		return nil, "no changelog in the image"
	}
	data := files[p]
	if strings.HasSuffix(p, ".gz") {
		var err error
		if data, err = gunzip(data, maxChangelogSize*8); err != nil {
			return nil, fmt.Sprintf("changelog %s unreadable: %v", displayPath(p), err)
		}
	}
	entries, err := ParseChangelog(displayPath(p), data)
	if err != nil {
		return nil, fmt.Sprintf("changelog unreadable: %v", err)
	}
	between := EntriesBetween(entries, old, new)
	if len(between) == 0 {
		return nil, fmt.Sprintf("no entries between %s and %s in %s", orNone(old), new, displayPath(p))
	}
	return between, ""
}
