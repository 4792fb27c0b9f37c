package dpkgdb

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ingotfleet/ingot/builder/deb"
)

// Installed is one package of a status file.
type Installed struct {
	Name, Version, Architecture string
	Status                      string // "install ok installed", …
	Fields                      *deb.Paragraph
}

// InfoName is the base name of the package's info files.
func (p *Installed) InfoName() string {
	if strings.EqualFold(strings.TrimSpace(p.Fields.Get("Multi-Arch")), "same") {
		return p.Name + ":" + p.Architecture
	}
	return p.Name
}

// DB is the dpkg database of a root, as read.
type DB struct {
	Root     string
	Packages []*Installed // in status-file order
}

// Load reads root's var/lib/dpkg/status.
func Load(root string) (*DB, error) {
	p := filepath.Join(root, Dir, "status")
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("reading dpkg status: %w", err)
	}
	defer f.Close()
	ps, err := deb.ParseParagraphs(f, p)
	if err != nil {
		return nil, err
	}
	db := &DB{Root: root}
	for i, par := range ps {
		in := &Installed{
			Name: par.Get("Package"), Version: par.Get("Version"),
			Architecture: par.Get("Architecture"), Status: par.Get("Status"), Fields: par,
		}
		if in.Name == "" || in.Status == "" {
			return nil, fmt.Errorf("%s: paragraph %d lacks Package or Status", p, i+1)
		}
		db.Packages = append(db.Packages, in)
	}
	return db, nil
}

// Lookup returns the package by name (the first of that name), or nil.
func (db *DB) Lookup(name string) *Installed {
	for _, p := range db.Packages {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// List returns the paths of info/<pkg>.list ("/." and "/usr/bin/ls" …).
func (db *DB) List(p *Installed) ([]string, error) {
	f, err := os.Open(filepath.Join(db.Root, Dir, "info", p.InfoName()+".list"))
	if err != nil {
		return nil, fmt.Errorf("reading file list of %s: %w", p.Name, err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// Owners maps every listed path ("/usr/bin/ls") to the packages that list
// it, sorted. Directories are usually listed by many packages.
func (db *DB) Owners() (map[string][]string, error) {
	owners := map[string][]string{}
	for _, p := range db.Packages {
		if !strings.HasSuffix(p.Status, " installed") && !strings.HasSuffix(p.Status, " unpacked") &&
			!strings.Contains(p.Status, "config") && !strings.Contains(p.Status, "triggers") {
			continue
		}
		paths, err := db.List(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		for _, path := range paths {
			owners[path] = append(owners[path], p.Name)
		}
	}
	for _, v := range owners {
		sort.Strings(v)
	}
	return owners, nil
}
