package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
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

// debFile is one package to unpack: a verified .deb on disk.
type debFile struct {
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
	debs   []debFile

	mu        sync.Mutex
	owner     map[string]int    // non-directory path → index of the package whose copy is on disk
	dirs      map[string]attrs  // directory path → attributes from the last package (in lock order) that ships it
	conflicts map[string][]int  // path → every package that ships it as a non-directory
	results   []*dpkgdb.Package // by package index
}

// unpackAll unpacks debs (in lock order: the order decides who wins a
// shared directory's attributes or a replaced file, whatever order the
// workers finish in) into root with `workers` goroutines and returns the
// dpkg database entries in the order of debs. Packages are started biggest
// first, or smallest first when reverse is set. progress (may be nil) is
// called once per package as it completes.
func unpackAll(ctx context.Context, root string, debs []debFile, workers int, reverse bool, progress func(done, total int, name string)) ([]*dpkgdb.Package, error) {
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
	w := &writer{u: u, pkg: i, name: d.Name, parentFD: -1}
	defer w.close()
	e := &entries{w: w, only: only, conffiles: conffiles}
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
	w         *writer
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
		if err := w.mkdir(p); err != nil {
			return err
		}
		w.u.claimDir(p, a)
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
	if only == nil && !w.u.claim(p, w.pkg) {
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
	rels, err := relations(a, "Replaces")
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
	w := &writer{u: u, parentFD: -1}
	defer w.close()
	paths := make([]string, 0, len(u.dirs))
	for p := range u.dirs {
		paths = append(paths, p)
	}
	slices.SortFunc(paths, images.ComparePaths)
	for _, p := range paths {
		a := u.dirs[p]
		dfd, base, err := w.parent(p)
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

// writer creates paths of one package below the root.
type writer struct {
	u          *unpacker
	pkg        int
	name       string
	parentPath string
	parentFD   int
	buf        []byte
}

func (w *writer) close() {
	if w.parentFD >= 0 {
		_ = unix.Close(w.parentFD) // an O_PATH descriptor: nothing to flush
		w.parentFD = -1
	}
}

// errRefused is wrapped by errors about paths that would leave the root
// or go through a symlink.
var errRefused = errors.New("refused")

// parent opens (or reuses) the directory holding p, refusing symlinks
// anywhere on the way.
func (w *writer) parent(p string) (int, string, error) {
	dir, base := images.Parent(p), path.Base(p)
	if w.parentFD >= 0 && dir == w.parentPath {
		return w.parentFD, base, nil
	}
	w.close()
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(w.u.rootFD, dir, how)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
			return -1, "", fmt.Errorf("%s: /%s: %w: its directory /%s is (or goes through) a symlink", w.name, p, errRefused, dir)
		}
		return -1, "", fmt.Errorf("%s: /%s: opening its directory: %w", w.name, p, err)
	}
	w.parentFD, w.parentPath = fd, dir
	return fd, base, nil
}

func (w *writer) mkdir(p string) error {
	dfd, base, err := w.parent(p)
	if err != nil {
		return err
	}
	err = unix.Mkdirat(dfd, base, 0o755)
	if err == nil {
		// 0755 whatever the umask; a package's own mode comes later.
		if err := unix.Fchmodat(dfd, base, 0o755, 0); err != nil {
			return fmt.Errorf("%s: chmod /%s: %w", w.name, p, err)
		}
		return nil
	}
	if err != unix.EEXIST {
		return fmt.Errorf("%s: mkdir /%s: %w", w.name, p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: /%s: %w", w.name, p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s: /%s: %w: a directory where another package put a non-directory", w.name, p, errRefused)
	}
	return nil
}

// write creates one non-directory entry at target (replacing what is
// there when replace is set).
func (w *writer) write(target string, hdr *tar.Header, content io.Reader, sum hash.Hash, replace bool) error {
	dfd, base, err := w.parent(target)
	if err != nil {
		return err
	}
	if replace {
		if err := unix.Unlinkat(dfd, base, 0); err != nil && err != unix.ENOENT {
			return fmt.Errorf("%s: replacing /%s: %w", w.name, target, err)
		}
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		return w.writeFile(dfd, base, target, hdr, content, sum)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, dfd, base); err != nil {
			return w.fail("creating symlink", target, err)
		}
		if err := unix.Fchownat(dfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return w.fail("chown", target, err)
		}
	case tar.TypeLink:
		return w.hardlink(dfd, base, target, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if err := w.mknod(dfd, base, target, hdr); err != nil {
			return err
		}
	}
	mtime := []unix.Timespec{{Sec: hdr.ModTime.Unix()}, {Sec: hdr.ModTime.Unix()}}
	if err := unix.UtimesNanoAt(dfd, base, mtime, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return w.fail("setting mtime of", target, err)
	}
	return nil
}

// fail is the error for doing what to target.
func (w *writer) fail(what, target string, err error) error {
	return fmt.Errorf("%s: %s /%s: %w", w.name, what, target, err)
}

// writeFile creates the regular file target as base in dfd with the
// content, owner, mode, xattrs and mtime of hdr, feeding sum (if set).
func (w *writer) writeFile(dfd int, base, target string, hdr *tar.Header, content io.Reader, sum hash.Hash) error {
	fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return w.fail("creating", target, err)
	}
	f := os.NewFile(uintptr(fd), target)
	defer func() { _ = f.Close() }() // closed and checked below; this is for the error paths
	if w.buf == nil {
		w.buf = make([]byte, 256<<10)
	}
	var dst io.Writer = f
	if sum != nil {
		dst = io.MultiWriter(f, sum)
	}
	n, err := io.CopyBuffer(dst, content, w.buf)
	if err != nil {
		return w.fail("writing", target, err)
	}
	if n != hdr.Size {
		return w.fail("writing", target, io.ErrUnexpectedEOF)
	}
	// chown before chmod: chown clears setuid and setgid bits.
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return w.fail("chown", target, err)
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode)&images.ModePerm); err != nil {
		return w.fail("chmod", target, err)
	}
	if err := setXattrs(fd, hdr); err != nil {
		return w.fail("setting xattrs of", target, err)
	}
	mtime := []unix.Timespec{{Sec: hdr.ModTime.Unix()}, {Sec: hdr.ModTime.Unix()}}
	if err := unix.UtimesNanoAt(dfd, base, mtime, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return w.fail("setting mtime of", target, err)
	}
	return f.Close()
}

// hardlink links target (base in dfd) to hdr's link target, which this
// package wrote before it.
func (w *writer) hardlink(dfd int, base, target string, hdr *tar.Header) error {
	lt, err := images.CleanPath(hdr.Linkname)
	if err != nil || lt == "." {
		return fmt.Errorf("%s: hardlink /%s to %q: %w", w.name, target, hdr.Linkname, errRefused)
	}
	// The link target was written by this package, maybe as a
	// conffile's .dpkg-new; resolve it beneath the root without symlinks.
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	tfd, err := unix.Openat2(w.u.rootFD, lt, how)
	if err != nil {
		return fmt.Errorf("%s: hardlink /%s: target /%s: %w", w.name, target, lt, err)
	}
	err = unix.Linkat(tfd, "", dfd, base, unix.AT_EMPTY_PATH)
	_ = unix.Close(tfd) // an O_PATH descriptor: nothing to flush
	if err != nil {
		return w.fail("creating hardlink", target, err)
	}
	return nil
}

// mknod makes the device node or fifo target (base in dfd) with the
// owner and mode of hdr.
func (w *writer) mknod(dfd int, base, target string, hdr *tar.Header) error {
	kind := uint32(unix.S_IFIFO)
	switch hdr.Typeflag {
	case tar.TypeChar:
		kind = unix.S_IFCHR
	case tar.TypeBlock:
		kind = unix.S_IFBLK
	}
	dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
	if err := unix.Mknodat(dfd, base, kind|0o600, dev); err != nil {
		return w.fail("mknod", target, err)
	}
	if err := unix.Fchownat(dfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return w.fail("chown", target, err)
	}
	if err := unix.Fchmodat(dfd, base, uint32(hdr.Mode)&images.ModePerm, 0); err != nil {
		return w.fail("chmod", target, err)
	}
	return nil
}

// setXattrs applies the PAX SCHILY.xattr records of hdr.
func setXattrs(fd int, hdr *tar.Header) error {
	keys := make([]string, 0)
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := unix.Fsetxattr(fd, strings.TrimPrefix(k, "SCHILY.xattr."), []byte(hdr.PAXRecords[k]), 0); err != nil {
			return err
		}
	}
	return nil
}
