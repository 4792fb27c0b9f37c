package differ

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/builder/dpkgdb"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/debversion"
)

// Where an image keeps its dpkg database.
const (
	dpkgStatus  = dpkgdb.StatusPath
	dpkgInfoDir = dpkgdb.Dir + "/info"
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

// ParseStatus reads a dpkg status file (name is for errors) with
// builder/dpkgdb, the project's one reader of it. Packages whose files are
// not on disk ("not-installed", "config-files": see
// dpkgdb.Installed.HasFiles) are left out. A package installed for several
// architectures (Multi-Arch: same) is keyed "name:arch", any other by name.
func ParseStatus(name string, data []byte) (map[string]*Package, error) {
	list, err := dpkgdb.ParseStatus(data, name)
	if err != nil {
		return nil, lineError(err)
	}
	return packagesOf(name, list)
}

// lineError words a syntax error of the dpkg database as the differ's
// other errors are ("file line N: …").
func lineError(err error) error {
	var pe *deb.ParseError
	var nf *deb.NotFieldError
	if errors.As(err, &pe) && errors.As(err, &nf) {
		return fmt.Errorf("%s line %d: want \"Field: value\", got %q", pe.File, pe.Line, nf.Text)
	}
	if errors.As(err, &pe) && pe.Line > 0 {
		return fmt.Errorf("%s line %d: %w", pe.File, pe.Line, pe.Err)
	}
	return err
}

// packagesOf turns the status entries into the report's packages.
func packagesOf(name string, list []*dpkgdb.Installed) (map[string]*Package, error) {
	pkgs := map[string]*Package{}
	for _, in := range list {
		if !in.HasFiles() {
			continue
		}
		p := &Package{Name: in.Name, Architecture: in.Architecture, Version: in.Version, Status: in.Status}
		if _, err := debversion.Parse(p.Version); err != nil {
			return nil, fmt.Errorf("%s line %d: package %s: %w", name, in.Fields.Line, p.Name, err)
		}
		if src, _, _ := strings.Cut(in.Fields.Text("Source"), " "); src != "" && src != p.Name {
			p.Source = src
		}
		for _, l := range strings.Split(in.Fields.Text("Conffiles"), "\n") {
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
	}
	return pkgs, nil
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
	read := func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return b, nil
		}
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	if _, ok := files[dpkgStatus]; !ok {
		return db, nil
	}
	d, err := dpkgdb.Open(read, "/")
	if err != nil {
		return nil, lineError(err)
	}
	if db.packages, err = packagesOf("/"+dpkgStatus, d.Packages); err != nil {
		return nil, err
	}
	r := newResolver(m)
	db.owners, err = d.OwnersFunc(func(l string) (string, bool, error) {
		if l == "/." {
			return "", false, nil
		}
		p, err := images.CleanPath(l)
		if err != nil {
			return "", false, err
		}
		p = r.resolveParents(p)
		return p, need == nil || need[p], nil
	})
	return db, err
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
