package provides

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/ingotfleet/ingot/builder/dpkgdb"
	"github.com/ingotfleet/ingot/internal/debversion"
)

// TargetFS is what a resolver reads from a target system: its files,
// relative to its root ("var/lib/dpkg/status"). os.DirFS of a root
// directory is one; images/view.FS over an image is another.
type TargetFS interface {
	fs.ReadDirFS
	fs.ReadFileFS
}

// DpkgResolver resolves file and soname dependencies against a target's
// dpkg database: var/lib/dpkg/status (installed packages),
// var/lib/dpkg/info/*.list (their files), *.shlibs and *.symbols (their
// libraries). Directory symlinks of the target (a merged /usr's /bin →
// usr/bin) are followed on both sides, so /bin/sh finds the package that
// lists /usr/bin/sh and the other way round.
type DpkgResolver struct {
	fsys TargetFS
	name string // for errors

	once    sync.Once
	err     error
	owners  map[string][]string // canonical path → packages
	shlibs  map[string]string   // soname → dependency
	symbols map[string]*symbolsLib
	arch    map[string]string // package → architecture
	ess     map[string]bool   // Essential: yes
	dirsMu  sync.Mutex
	dirs    map[string]string // resolveDir's answers
}

type symbolsLib struct {
	pkg    string            // "libc6 #MINVER#" → "libc6"
	minVer map[string]string // version node → first Debian version that has it
}

// NewDpkgResolver reads the target lazily, on the first question. name
// names the target in errors.
func NewDpkgResolver(fsys TargetFS, name string) *DpkgResolver {
	return &DpkgResolver{fsys: fsys, name: name}
}

// NewRootResolver resolves against a root directory on disk.
func NewRootResolver(root string) *DpkgResolver {
	return NewDpkgResolver(os.DirFS(root).(TargetFS), root)
}

const dpkgInfo = "var/lib/dpkg/info"

func (r *DpkgResolver) load() error {
	r.once.Do(func() { r.err = r.doLoad() })
	return r.err
}

func (r *DpkgResolver) doLoad() error {
	r.shlibs = map[string]string{}
	r.symbols = map[string]*symbolsLib{}
	r.arch = map[string]string{}
	r.ess = map[string]bool{}
	db, err := dpkgdb.Open(r.fsys.ReadFile, r.name)
	if err != nil {
		return fmt.Errorf("target %s: reading the dpkg status: %w", r.name, err)
	}
	installed := map[string]bool{}
	for _, p := range db.Packages {
		if p.HasFiles() {
			installed[p.Name] = true
			r.arch[p.Name] = p.Architecture
			r.ess[p.Name] = p.Fields.Get("Essential") == "yes"
		}
	}
	r.owners, err = db.OwnersFunc(func(l string) (string, bool, error) {
		if l == "/." {
			return "", false, nil
		}
		return r.canonical(l), true, nil
	})
	if err != nil {
		return fmt.Errorf("target %s: %w", r.name, err)
	}
	ents, err := r.fsys.ReadDir(dpkgInfo)
	if err != nil {
		return fmt.Errorf("target %s: %w", r.name, err)
	}
	for _, e := range ents { // sorted by name
		n := e.Name()
		dot := strings.LastIndexByte(n, '.')
		if dot < 0 {
			continue
		}
		pkg, kind := n[:dot], n[dot+1:]
		if i := strings.IndexByte(pkg, ':'); i >= 0 {
			pkg = pkg[:i]
		}
		if !installed[pkg] || (kind != "shlibs" && kind != "symbols") {
			continue
		}
		data, err := r.fsys.ReadFile(path.Join(dpkgInfo, n))
		if err != nil {
			return fmt.Errorf("target %s: %w", r.name, err)
		}
		if kind == "shlibs" {
			r.parseShlibs(string(data))
		} else {
			r.parseSymbols(string(data))
		}
	}
	return nil
}

func appendUniq(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// parseShlibs reads "[type:] library soversion dependencies" lines.
func (r *DpkgResolver) parseShlibs(s string) {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if strings.HasSuffix(f[0], ":") { // udeb: lines
			continue
		}
		lib, ver, dep := f[0], f[1], strings.Join(f[2:], " ")
		for _, so := range []string{lib + ".so." + ver, lib + "-" + ver + ".so"} {
			if _, ok := r.shlibs[so]; !ok {
				r.shlibs[so] = dep
			}
		}
	}
}

// parseSymbols reads deb-symbols(5): "soname pkg #MINVER#" then
// " symbol@NODE version" lines.
func (r *DpkgResolver) parseSymbols(s string) {
	var cur *symbolsLib
	for _, line := range strings.Split(s, "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case line[0] != ' ' && line[0] != '|' && line[0] != '*':
			f := strings.Fields(line)
			if len(f) < 2 {
				cur = nil
				continue
			}
			cur = &symbolsLib{pkg: f[1], minVer: map[string]string{}}
			if _, ok := r.symbols[f[0]]; !ok {
				r.symbols[f[0]] = cur
			}
		case line[0] == ' ' && cur != nil:
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			_, node, ok := strings.Cut(f[0], "@")
			if !ok {
				continue
			}
			v := f[1]
			if old, ok := cur.minVer[node]; !ok || debversion.Compare(v, old) < 0 {
				cur.minVer[node] = v
			}
		}
	}
}

// canonical resolves the directory symlinks of the target along p's
// parent directories (never its last component), staying in the root.
func (r *DpkgResolver) canonical(p string) string {
	dir, base := path.Split(path.Clean("/" + p))
	return path.Join(r.resolveDir(dir, 0), base)
}

func (r *DpkgResolver) resolveDir(dir string, depth int) string {
	dir = path.Clean("/" + dir)
	if dir == "/" || depth > 40 {
		return dir
	}
	if r.dirs == nil {
		r.dirs = map[string]string{}
	}
	if c, ok := r.dirs[dir]; ok {
		return c
	}
	c := r.resolveDirUncached(dir, depth)
	r.dirs[dir] = c
	return c
}

func (r *DpkgResolver) resolveDirUncached(dir string, depth int) string {
	parent := r.resolveDir(path.Dir(dir), depth+1)
	cur := path.Join(parent, path.Base(dir))
	target, err := readlinkFS(r.fsys, strings.TrimPrefix(cur, "/"))
	if err != nil {
		return cur
	}
	if !strings.HasPrefix(target, "/") {
		target = path.Join(parent, target)
	}
	return r.resolveDir(target, depth+1)
}

// readlinkFS reads a symlink through fs.ReadLinkFS when the FS has it.
func readlinkFS(fsys fs.FS, name string) (string, error) {
	if rl, ok := fsys.(fs.ReadLinkFS); ok {
		return rl.ReadLink(name)
	}
	return "", errors.ErrUnsupported
}

// Essential implements Resolver.
func (r *DpkgResolver) Essential(pkg string) bool {
	if r.load() != nil {
		return false
	}
	return r.ess[pkg]
}

// FileOwner implements Resolver.
func (r *DpkgResolver) FileOwner(p string) (string, error) {
	if err := r.load(); err != nil {
		return "", err
	}
	r.dirsMu.Lock()
	c := r.canonical(p)
	r.dirsMu.Unlock()
	owners := r.owners[c]
	if len(owners) == 0 {
		return "", nil
	}
	sort.Strings(owners)
	return owners[0], nil
}

// Soname implements Resolver: the symbols file gives the version that
// first had every symbol version asked for; else the shlibs file gives the
// dependency; else the package whose file list holds the library.
func (r *DpkgResolver) Soname(so string, versions []string, bits64 bool) (string, error) {
	if err := r.load(); err != nil {
		return "", err
	}
	if lib := r.symbols[so]; lib != nil {
		min := ""
		for _, v := range versions {
			if mv, ok := lib.minVer[v]; ok && (min == "" || debversion.Compare(mv, min) > 0) {
				min = mv
			}
		}
		if min == "" {
			if dep, ok := r.shlibs[so]; ok {
				return dep, nil
			}
			return lib.pkg, nil
		}
		return fmt.Sprintf("%s (>= %s)", lib.pkg, min), nil
	}
	if dep, ok := r.shlibs[so]; ok {
		return dep, nil
	}
	var cands []string
	for p, owners := range r.owners {
		if path.Base(p) != so || !strings.Contains(p, "/lib") {
			continue
		}
		for _, o := range owners {
			if bits64 != is64(r.arch[o]) && r.arch[o] != "all" {
				continue
			}
			cands = appendUniq(cands, o)
		}
	}
	sort.Strings(cands)
	if len(cands) == 0 {
		return "", nil
	}
	return cands[0], nil
}

func is64(arch string) bool {
	switch arch {
	case "amd64", "arm64", "ppc64el", "ppc64", "s390x", "riscv64", "mips64el", "loong64", "sparc64", "alpha", "ia64":
		return true
	}
	return false
}
