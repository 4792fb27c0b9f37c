package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/sourcegraph/conc/pool"
	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/builder/dpkgdb"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/debversion"
)

// Deb is one package to unpack: a verified .deb on disk.
type Deb struct {
	Path string // on disk (the download cache)
	Name string // name_version_arch, for messages
}

// attrs are the metadata of a path from a data.tar header.
type attrs struct {
	mode     uint32 // permission bits with setuid/setgid/sticky
	uid, gid int
	pkg      int // index of the package that set them
}

// unpacker unpacks many packages concurrently into one root. Paths are
// written through directory file descriptors opened with openat2
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, so a package can never write
// outside the root or through a symlink.
type unpacker struct {
	root   string
	rootFD int
	debs   []Deb

	mu        sync.Mutex
	owner     map[string]int    // non-directory path → index of the package whose copy is on disk
	dirs      map[string]attrs  // directory path → attributes from the last package (in lock order) that ships it
	conflicts map[string][]int  // path → every package that ships it as a non-directory
	results   []*dpkgdb.Package // by package index
}

// All unpacks debs (in lock order: the order decides who wins a
// shared directory's attributes or a replaced file, whatever order the
// workers finish in) into root with `workers` goroutines and returns the
// dpkg database entries in the order of debs. Packages are started biggest
// first, or smallest first when reverse is set. progress (may be nil) is
// called once per package as it completes.
func All(ctx context.Context, root string, debs []Deb, workers int, reverse bool, progress func(done, total int, name string)) ([]*dpkgdb.Package, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening root %s: %w", root, err)
	}
	defer unix.Close(fd)
	u := &unpacker{
		root: root, rootFD: fd, debs: debs,
		owner:     map[string]int{},
		dirs:      map[string]attrs{},
		conflicts: map[string][]int{},
		results:   make([]*dpkgdb.Package, len(debs)),
	}
	if workers < 1 {
		workers = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(debs))
	var doneMu sync.Mutex
	done := 0
	// Biggest first keeps both workers busy to the end.
	order := make([]int, len(debs))
	sizes := make([]int64, len(debs))
	for i := range order {
		order[i] = i
		if fi, err := os.Stat(debs[i].Path); err == nil {
			sizes[i] = fi.Size()
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return sizes[order[a]] > sizes[order[b]] })
	if reverse {
		for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
			order[i], order[j] = order[j], order[i]
		}
	}
	// The pool takes packages in order as workers free up; a panic in
	// one is raised here.
	p := pool.New().WithMaxGoroutines(workers)
	for _, i := range order {
		if ctx.Err() != nil {
			break
		}
		p.Go(func() {
			if err := u.unpackOne(ctx, i, nil); err != nil {
				errs[i] = err
				cancel()
				return
			}
			if progress != nil {
				doneMu.Lock()
				done++
				progress(done, len(debs), debs[i].Name)
				doneMu.Unlock()
			}
		})
	}
	p.Wait()
	for _, e := range errs {
		if e != nil {
			return nil, e
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := u.resolveConflicts(ctx); err != nil {
		return nil, err
	}
	if err := u.applyDirAttrs(); err != nil {
		return nil, err
	}
	return u.results, nil
}

// claim records that package i ships the non-directory p and reports
// whether i should write it now (nobody else has).
func (u *unpacker) claim(p string, i int) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if j, ok := u.owner[p]; ok {
		if len(u.conflicts[p]) == 0 {
			u.conflicts[p] = []int{j}
		}
		u.conflicts[p] = append(u.conflicts[p], i)
		return false
	}
	u.owner[p] = i
	return true
}

func (u *unpacker) claimDir(p string, a attrs) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if old, ok := u.dirs[p]; !ok || a.pkg > old.pkg {
		u.dirs[p] = a
	}
}

// unpackOne unpacks package i. When only is non-nil, it writes just those
// paths (replacing what is there) and records nothing: the second pass of
// conflict resolution.
func (u *unpacker) unpackOne(ctx context.Context, i int, only map[string]bool) error {
	d := u.debs[i]
	f, err := os.Open(d.Path)
	if err != nil {
		return fmt.Errorf("unpacking %s: %w", d.Name, err)
	}
	defer f.Close()
	r, err := deb.NewReader(f, d.Name)
	if err != nil {
		return err
	}
	ctl, err := r.Control()
	if err != nil {
		return err
	}
	conffiles := map[string]bool{}
	for _, c := range ctl.Conffiles() {
		if cp, err := images.CleanPath(c); err == nil {
			conffiles[cp] = true
		}
	}
	_, hasMD5 := ctl.Files["md5sums"]
	data, err := r.Data()
	if err != nil {
		return err
	}
	defer data.Close()
	w := &Writer{rootFD: u.rootFD, pkg: i, name: d.Name, parentFD: -1}
	defer w.close()
	e := &entries{u: u, w: w, only: only, conffiles: conffiles}
	if !hasMD5 && only == nil {
		e.h = md5.New()
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := data.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := e.unpack(hdr, data); err != nil {
			return err
		}
	}
	if err := data.Close(); err != nil {
		return err
	}
	if only != nil {
		return nil
	}
	pkg := &dpkgdb.Package{Control: ctl, Paths: e.list}
	if hasMD5 {
		pkg.MD5sums = ctl.Files["md5sums"].Data
	} else {
		pkg.MD5sums = e.md5sums.Bytes()
	}
	u.mu.Lock()
	u.results[i] = pkg
	u.mu.Unlock()
	return nil
}

// entries unpacks the data.tar entries of one package through w,
// gathering its file list and (when h is set) its md5sums.
type entries struct {
	u         *unpacker
	w         *Writer
	only      map[string]bool // the second pass of conflict resolution: just these
	conffiles map[string]bool
	h         hash.Hash // for md5sums, when the package has none
	list      []string  // the package's paths, as in dpkg's .list
	md5sums   bytes.Buffer
}

// unpack writes the entry hdr (content from data) and records it.
func (e *entries) unpack(hdr *tar.Header, data io.Reader) error {
	w, only := e.w, e.only
	p, err := images.CleanPath(hdr.Name)
	if err != nil {
		return fmt.Errorf("%s: data.tar entry %q: %w", w.name, hdr.Name, err)
	}
	if p == "." {
		if only == nil {
			e.list = append(e.list, "/.")
		}
		return nil
	}
	if only != nil && !only[p] {
		return nil
	}
	if only == nil {
		e.list = append(e.list, "/"+p)
	}
	a := attrs{mode: uint32(hdr.Mode) & images.ModePerm, uid: hdr.Uid, gid: hdr.Gid, pkg: w.pkg}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := w.Mkdir(p); err != nil {
			return err
		}
		e.u.claimDir(p, a)
		return nil
	case tar.TypeReg, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return fmt.Errorf("%s: data.tar entry %q: unsupported type %q", w.name, hdr.Name, hdr.Typeflag)
	}
	target := p
	if e.conffiles[p] && hdr.Typeflag == tar.TypeReg {
		target = p + ".dpkg-new"
	}
	var sum hash.Hash
	if e.h != nil && hdr.Typeflag == tar.TypeReg && !e.conffiles[p] {
		e.h.Reset()
		sum = e.h
	}
	if only == nil && !e.u.claim(p, w.pkg) {
		// Resolved after every package is unpacked; the package's
		// md5sums list the file all the same, as dpkg's would.
		if sum != nil {
			if _, err := io.Copy(sum, data); err != nil {
				return err
			}
			fmt.Fprintf(&e.md5sums, "%s  %s\n", hex.EncodeToString(sum.Sum(nil)), p)
		}
		return nil
	}
	if err := w.write(target, hdr, data, sum, only != nil); err != nil {
		return err
	}
	if sum != nil {
		fmt.Fprintf(&e.md5sums, "%s  %s\n", hex.EncodeToString(sum.Sum(nil)), p)
	}
	return nil
}

// replaces reports whether package a declares Replaces on package b at
// b's version ("Replaces: b (<< 2)" does not replace b 2).
func replaces(a, b *deb.Control) (bool, error) {
	rels, err := a.Relations("Replaces")
	if err != nil {
		return false, err
	}
	v := debversion.Split(b.Get("Version"))
	for _, r := range rels {
		for _, p := range r {
			if p.Name == b.Package() && p.SatisfiedBy(v) {
				return true, nil
			}
		}
	}
	return false, nil
}

// resolveConflicts settles paths shipped by several packages. As with
// dpkg, a package may only take over another's file when it declares
// Replaces on it; the winner is the package that replaces all others
// (when several could, the last in lock order). Files of the winner are
// rewritten when another package's copy got there first, and the path
// leaves the losers' file lists, as dpkg does when a file is taken over.
func (u *unpacker) resolveConflicts(ctx context.Context) error {
	if len(u.conflicts) == 0 {
		return nil
	}
	paths := make([]string, 0, len(u.conflicts))
	for p := range u.conflicts {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	rewrite := map[int]map[string]bool{}
	for _, p := range paths {
		pkgs := u.conflicts[p]
		sort.Ints(pkgs)
		winner := -1
		for k := len(pkgs) - 1; k >= 0 && winner < 0; k-- {
			cand := pkgs[k]
			ok := true
			for _, o := range pkgs {
				if o == cand {
					continue
				}
				r, err := replaces(u.results[cand].Control, u.results[o].Control)
				if err != nil {
					return err
				}
				if !r {
					ok = false
					break
				}
			}
			if ok {
				winner = cand
			}
		}
		if winner < 0 {
			names := make([]string, len(pkgs))
			for k, i := range pkgs {
				names[k] = u.debs[i].Name
			}
			return fmt.Errorf("file conflict: /%s is in %s, and none of them Replaces the others", p, strings.Join(names, " and "))
		}
		for _, o := range pkgs {
			if o != winner {
				res := u.results[o]
				res.Paths = removeString(res.Paths, "/"+p)
			}
		}
		if u.owner[p] != winner {
			if rewrite[winner] == nil {
				rewrite[winner] = map[string]bool{}
			}
			rewrite[winner][p] = true
			u.owner[p] = winner
		}
	}
	for _, i := range sortedInts(rewrite) {
		if err := u.unpackOne(ctx, i, rewrite[i]); err != nil {
			return err
		}
	}
	return nil
}

func removeString(s []string, x string) []string {
	out := s[:0]
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

func sortedInts[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// applyDirAttrs gives every directory the owner and mode of the last
// package (in lock order) that ships it, whatever order the concurrent
// unpack created it in.
func (u *unpacker) applyDirAttrs() error {
	w := &Writer{rootFD: u.rootFD, parentFD: -1}
	defer w.close()
	paths := make([]string, 0, len(u.dirs))
	for p := range u.dirs {
		paths = append(paths, p)
	}
	slices.SortFunc(paths, images.ComparePaths)
	for _, p := range paths {
		a := u.dirs[p]
		dfd, base, err := w.Parent(p)
		if err != nil {
			return err
		}
		if err := unix.Fchownat(dfd, base, a.uid, a.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown /%s: %w", p, err)
		}
		if err := unix.Fchmodat(dfd, base, a.mode, 0); err != nil {
			return fmt.Errorf("chmod /%s: %w", p, err)
		}
		// Like dpkg, leave directory mtimes alone: they become the time
		// of the build, which normalisation clamps to SOURCE_DATE_EPOCH.
	}
	return nil
}
