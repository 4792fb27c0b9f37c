package differ

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/ingotfleet/ingot/images"
)

// Where an image keeps its dpkg database.
const (
	dpkgStatus  = "var/lib/dpkg/status"
	dpkgInfoDir = "var/lib/dpkg/info"
)

// isDpkgMeta reports whether p is a file of the dpkg database the differ
// reads: the status file and the file lists.
func isDpkgMeta(p string) bool {
	return p == dpkgStatus || (images.Parent(p) == dpkgInfoDir && strings.HasSuffix(p, ".list"))
}

// Package is one package of an image's dpkg database.
type Package struct {
	Name         string   `json:"name"`
	Architecture string   `json:"architecture,omitempty"`
	Version      string   `json:"version"`
	Source       string   `json:"source,omitempty"`
	Status       string   `json:"status"`
	Conffiles    []string `json:"conffiles,omitempty"`
}

// ParseStatus reads a dpkg status file (name is for errors). Packages
// that are not installed ("not-installed", "config-files") are left out.
func ParseStatus(name string, data []byte) (map[string]*Package, error) {
	pkgs := map[string]*Package{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxChangelogLine)
	n, start := 0, 0
	fields := map[string]string{}
	var last string
	flush := func() error {
		defer clear(fields)
		if len(fields) == 0 {
			return nil
		}
		p := &Package{Name: fields["Package"], Architecture: fields["Architecture"], Version: fields["Version"], Status: fields["Status"]}
		if p.Name == "" {
			return fmt.Errorf("%s line %d: paragraph without a Package field", name, start)
		}
		st := strings.Fields(p.Status)
		if len(st) != 3 {
			return fmt.Errorf("%s line %d: package %s: malformed Status %q", name, start, p.Name, p.Status)
		}
		if st[2] == "not-installed" || st[2] == "config-files" {
			return nil
		}
		if _, err := ParseVersion(p.Version); err != nil {
			return fmt.Errorf("%s line %d: package %s: %w", name, start, p.Name, err)
		}
		if src, _, _ := strings.Cut(fields["Source"], " "); src != "" && src != p.Name {
			p.Source = src
		}
		for _, l := range strings.Split(fields["Conffiles"], "\n") {
			if f := strings.Fields(l); len(f) >= 2 {
				p.Conffiles = append(p.Conffiles, f[0])
			}
		}
		key := p.Name
		if prev, ok := pkgs[key]; ok {
			// Multi-Arch: same packages installed for several architectures.
			delete(pkgs, key)
			pkgs[prev.Name+":"+prev.Architecture] = prev
			key = p.Name + ":" + p.Architecture
		}
		pkgs[key] = p
		return nil
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			if err := flush(); err != nil {
				return nil, err
			}
			last = ""
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return nil, fmt.Errorf("%s line %d: continuation line outside a field", name, n)
			}
			fields[last] += "\n" + strings.TrimSpace(line)
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok || k == "" {
				return nil, fmt.Errorf("%s line %d: want \"Field: value\", got %q", name, n, clip(line))
			}
			if len(fields) == 0 {
				start = n
			}
			last = k
			fields[k] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s line %d: %w", name, n+1, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return pkgs, nil
}

// listPackage is the package a file list in var/lib/dpkg/info belongs to:
// "libc6:amd64.list" → "libc6".
func listPackage(p string) string {
	base := strings.TrimSuffix(path.Base(p), ".list")
	name, _, _ := strings.Cut(base, ":")
	return name
}

// dpkgDB is what the differ knows of one image's dpkg database.
type dpkgDB struct {
	packages map[string]*Package
	owners   map[string][]string // manifest path → owning packages, sorted
}

// readDpkgDB builds the database from the status file and file lists held
// in files (path → content). Owners are recorded only for the paths in
// need (all paths when need is nil). Paths in the lists are mapped onto the
// manifest through its symlinks ("/bin/ls" → "usr/bin/ls" in a merged-/usr
// image). An image without a status file has an empty database.
func readDpkgDB(m *images.Manifest, files map[string][]byte, need map[string]bool) (*dpkgDB, error) {
	db := &dpkgDB{packages: map[string]*Package{}, owners: map[string][]string{}}
	status, ok := files[dpkgStatus]
	if !ok {
		return db, nil
	}
	var err error
	if db.packages, err = ParseStatus("/"+dpkgStatus, status); err != nil {
		return nil, err
	}
	installed := map[string]bool{}
	for _, p := range db.packages {
		installed[p.Name] = true
	}
	r := newResolver(m)
	for _, lp := range slices.Sorted(maps.Keys(files)) {
		if lp == dpkgStatus {
			continue
		}
		pkg := listPackage(lp)
		if !installed[pkg] {
			continue
		}
		for _, l := range strings.Split(string(files[lp]), "\n") {
			if l == "" || l == "/." {
				continue
			}
			p, err := images.CleanPath(l)
			if err != nil {
				return nil, fmt.Errorf("/%s: %w", lp, err)
			}
			p = r.resolveParents(p)
			if need != nil && !need[p] {
				continue
			}
			if o := db.owners[p]; len(o) == 0 || o[len(o)-1] != pkg {
				db.owners[p] = append(o, pkg)
			}
		}
	}
	for p, o := range db.owners {
		slices.Sort(o)
		db.owners[p] = slices.Compact(o)
	}
	return db, nil
}

// resolver maps paths onto a manifest through the symlinks in it, as the
// kernel would inside the image's root (never leaving the root).
type resolver struct {
	m     *images.Manifest
	cache map[string]string
}

func newResolver(m *images.Manifest) *resolver {
	return &resolver{m: m, cache: map[string]string{".": "."}}
}

// resolveParents follows symlinks in every component of p but the last.
func (r *resolver) resolveParents(p string) string {
	if p == "." {
		return p
	}
	parent := images.Parent(p)
	dir := r.resolve(parent, 0)
	if dir == parent {
		return p // the common case: no symlink on the way, no allocation
	}
	base := path.Base(p)
	if dir == "." {
		return base
	}
	return dir + "/" + base
}

// resolve follows symlinks in every component of p, the last included.
// A path through something missing resolves as far as it can.
func (r *resolver) resolve(p string, depth int) string {
	if p == "." {
		return p
	}
	if q, ok := r.cache[p]; ok {
		return q
	}
	q := r.resolveParents(p)
	if depth < 40 {
		if e := r.m.Lookup(q); e != nil && e.Type == images.TypeSymlink {
			target := e.Link
			if !strings.HasPrefix(target, "/") {
				target = images.Parent(q) + "/" + target
			}
			// Clean within the root: ".." at the root stays at the root.
			if t := path.Clean("/" + target); t == "/" {
				q = "."
			} else {
				q = r.resolve(t[1:], depth+1)
			}
		}
	}
	r.cache[p] = q
	return q
}

// changelogPaths are where a package's Debian changelog may be, in order.
func changelogPaths(pkg, arch string) []string {
	d := "usr/share/doc/" + pkg + "/"
	ps := []string{d + "changelog.Debian.gz"}
	if arch != "" {
		ps = append(ps, d+"changelog.Debian."+arch+".gz")
	}
	return append(ps, d+"changelog.gz", d+"changelog")
}

// findChangelog returns the manifest path of pkg's changelog, "" if none.
func findChangelog(m *images.Manifest, r *resolver, p *Package) string {
	for _, c := range changelogPaths(p.Name, p.Architecture) {
		q := r.resolve(c, 0)
		if e := m.Lookup(q); e != nil {
			if e = m.Resolve(e); e != nil && e.Type == images.TypeFile {
				return e.Path
			}
		}
	}
	return ""
}
