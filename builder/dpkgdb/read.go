package dpkgdb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ingotfleet/ingot/builder/deb"
)

// StatusPath is where a root keeps dpkg's status file (slash-separated,
// relative to the root).
const StatusPath = Dir + "/status"

// InfoName is the base name of a package's info files: "pkg", or
// "pkg:arch" for a "Multi-Arch: same" package, as dpkg names them.
func InfoName(name, arch, multiArch string) string {
	if strings.EqualFold(strings.TrimSpace(multiArch), "same") {
		return name + ":" + arch
	}
	return name
}

// Installed is one package of a status file.
type Installed struct {
	Name, Version, Architecture string
	Status                      string // "install ok installed", …
	Fields                      *deb.Paragraph
}

// InfoName is the base name of the package's info files.
func (p *Installed) InfoName() string {
	return InfoName(p.Name, p.Architecture, p.Fields.Get("Multi-Arch"))
}

// State is the last word of the Status field: "installed", "unpacked",
// "half-configured", "config-files", …
func (p *Installed) State() string {
	st := strings.Fields(p.Status)
	if len(st) == 0 {
		return ""
	}
	return st[len(st)-1]
}

// HasFiles is the project's one meaning of "installed" when reading a
// root: the package's files are on disk, that is its state is anything
// but "not-installed" and "config-files" (where only conffiles remain).
// A package half-way through installation or removal counts: its files
// are there and its file list names them.
func (p *Installed) HasFiles() bool {
	s := p.State()
	return s != "not-installed" && s != "config-files"
}

// ParseStatus reads a dpkg status file (name is used in errors). Every
// paragraph must have a Package field and a Status of three words; the
// errors are *deb.ParseError naming the line.
func ParseStatus(data []byte, name string) ([]*Installed, error) {
	ps, err := deb.ParseParagraphs(bytes.NewReader(data), name)
	if err != nil {
		return nil, err
	}
	out := make([]*Installed, 0, len(ps))
	for _, par := range ps {
		in := &Installed{
			Name: par.Get("Package"), Version: par.Get("Version"),
			Architecture: par.Get("Architecture"), Status: par.Get("Status"), Fields: par,
		}
		if in.Name == "" {
			return nil, &deb.ParseError{File: name, Line: par.Line, Err: errors.New("paragraph without a Package field")}
		}
		if len(strings.Fields(in.Status)) != 3 {
			return nil, &deb.ParseError{File: name, Line: par.Line, Err: fmt.Errorf("package %s: malformed Status %q", in.Name, in.Status)}
		}
		out = append(out, in)
	}
	return out, nil
}

// ReadFileFunc reads a file of a root by its slash-separated path
// relative to the root ("var/lib/dpkg/status"); a missing file is an
// error wrapping fs.ErrNotExist. fs.ReadFile over an fs.FS is one.
type ReadFileFunc func(name string) ([]byte, error)

// DB is the dpkg database of a root, as read.
type DB struct {
	Root     string       // the root's directory for Load, else a label
	Packages []*Installed // in status-file order
	readFile ReadFileFunc
}

// Load reads root's var/lib/dpkg/status.
func Load(root string) (*DB, error) {
	return Open(func(name string) ([]byte, error) {
		return os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	}, root)
}

// Open reads the status file of a root through readFile; label names the
// root in errors. A missing status file is an error wrapping
// fs.ErrNotExist.
func Open(readFile ReadFileFunc, label string) (*DB, error) {
	data, err := readFile(StatusPath)
	if err != nil {
		return nil, fmt.Errorf("reading dpkg status: %w", err)
	}
	pkgs, err := ParseStatus(data, filepath.Join(label, StatusPath))
	if err != nil {
		return nil, err
	}
	return &DB{Root: label, Packages: pkgs, readFile: readFile}, nil
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

// List returns the lines of info/<pkg>.list ("/." and "/usr/bin/ls" …).
// A list under the other of dpkg's two names ("pkg" and "pkg:arch") is
// read when the expected one is missing: databases written by hand or by
// an older dpkg name them either way.
func (db *DB) List(p *Installed) ([]string, error) {
	if db.readFile == nil {
		db.readFile = func(name string) ([]byte, error) {
			return os.ReadFile(filepath.Join(db.Root, filepath.FromSlash(name)))
		}
	}
	names := []string{p.InfoName(), p.Name + ":" + p.Architecture}
	if names[0] != p.Name {
		names[1] = p.Name
	}
	var data []byte
	var err error
	for _, n := range names {
		if data, err = db.readFile(path.Join(Dir, "info", n+".list")); !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading file list of %s: %w", p.Name, err)
	}
	var out []string
	err = eachLine(data, func(l string) {
		if l != "" {
			out = append(out, l)
		}
	})
	return out, err
}

// eachLine calls fn for every line of an info file (a file list,
// md5sums), without its "\n".
func eachLine(data []byte, fn func(string)) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		fn(sc.Text())
	}
	return sc.Err()
}

// RemovePaths takes removed paths ("/usr/share/doc/x") out of every file
// list and md5sums of root's database, so that dpkg -S and dpkg --verify
// agree with a root from which they were deleted. A file is rewritten
// only when it changes, keeping its mode.
func RemovePaths(root string, removed map[string]bool) error {
	info := filepath.Join(root, Dir, "info")
	ents, err := os.ReadDir(info)
	if err != nil {
		return fmt.Errorf("fixing dpkg file lists: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		var keepLine func(string) bool
		switch {
		case strings.HasSuffix(name, ".list"):
			keepLine = func(l string) bool { return !removed[l] }
		case strings.HasSuffix(name, ".md5sums"):
			keepLine = func(l string) bool {
				_, p, ok := strings.Cut(l, "  ")
				return !ok || !removed["/"+p]
			}
		default:
			continue
		}
		p := filepath.Join(info, name)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var out bytes.Buffer
		err = eachLine(data, func(l string) {
			if keepLine(l) {
				out.WriteString(l)
				out.WriteByte('\n')
			}
		})
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(p, out.Bytes(), fi.Mode().Perm()); err != nil {
				return err
			}
		}
	}
	return nil
}

// Owners maps every listed path ("/usr/bin/ls", "/.") to the packages
// that list it, sorted, each once. Directories are usually listed by many
// packages. Only packages that HasFiles count; one without a file list
// owns nothing.
func (db *DB) Owners() (map[string][]string, error) {
	return db.OwnersFunc(func(p string) (string, bool, error) { return p, true, nil })
}

// OwnersFunc is Owners with every listed path passed through key first:
// the map is by the key it returns, and a path for which it returns false
// is left out.
func (db *DB) OwnersFunc(key func(listed string) (string, bool, error)) (map[string][]string, error) {
	owners := map[string][]string{}
	for _, p := range db.Packages {
		if !p.HasFiles() {
			continue
		}
		paths, err := db.List(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		for _, listed := range paths {
			k, ok, err := key(listed)
			if err != nil {
				return nil, fmt.Errorf("file list of %s: %w", p.Name, err)
			}
			if !ok {
				continue
			}
			if o := owners[k]; len(o) == 0 || o[len(o)-1] != p.Name {
				owners[k] = append(o, p.Name)
			}
		}
	}
	for k, o := range owners {
		slices.Sort(o)
		owners[k] = slices.Compact(o)
	}
	return owners, nil
}
