package builder

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/builder/dpkgdb"
	"github.com/ingotfleet/ingot/builder/unpack"
	"github.com/ingotfleet/ingot/images"
)

// newRootWriter is a writer for files the builder itself puts in the
// root (not from a package): the same symlink-refusing path resolution
// as the unpacker.
func newRootWriter(root, what string) (*unpack.Writer, func(), error) {
	w, err := unpack.NewWriter(root, what)
	if err != nil {
		return nil, nil, err
	}
	return w, w.Close, nil
}

// makeDev creates the device nodes and links of /dev that mmdebstrap puts
// in a root (the sandbox mounts its own /dev over them while scripts run).
func makeDev(root string) error {
	w, done, err := newRootWriter(root, "/dev")
	if err != nil {
		return err
	}
	defer done()
	if err := w.Mkdir("dev"); err != nil {
		return err
	}
	if err := unix.Fchmodat(w.RootFD(), "dev", 0o755, 0); err != nil {
		return fmt.Errorf("chmod /dev: %w", err)
	}
	nodes := []struct {
		name         string
		major, minor uint32
	}{{"console", 5, 1}, {"full", 1, 7}, {"null", 1, 3}, {"ptmx", 5, 2}, {"random", 1, 8},
		{"tty", 5, 0}, {"urandom", 1, 9}, {"zero", 1, 5}}
	for _, n := range nodes {
		dfd, base, err := w.Parent("dev/" + n.name)
		if err != nil {
			return err
		}
		if err := unix.Mknodat(dfd, base, unix.S_IFCHR|0o666, int(unix.Mkdev(n.major, n.minor))); err != nil {
			return fmt.Errorf("mknod /dev/%s: %w", n.name, err)
		}
		if err := unix.Fchmodat(dfd, base, 0o666, 0); err != nil {
			return fmt.Errorf("chmod /dev/%s: %w", n.name, err)
		}
	}
	for _, d := range []string{"pts", "shm"} {
		if err := w.Mkdir("dev/" + d); err != nil {
			return err
		}
	}
	for _, l := range [][2]string{{"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"},
		{"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}} {
		dfd, base, err := w.Parent("dev/" + l[0])
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(l[1], dfd, base); err != nil {
			return fmt.Errorf("symlink /dev/%s: %w", l[0], err)
		}
	}
	return nil
}

// writeRootFile writes (or replaces) a file of the root, owned by root.
func writeRootFile(root, rel string, data []byte, mode uint32) error {
	w, done, err := newRootWriter(root, "ingot")
	if err != nil {
		return err
	}
	defer done()
	return w.PutFile(rel, data, mode)
}

// copyOverlay copies the overlay directory over the root: directories are
// created (or get the overlay's mode), files and symlinks replace what is
// there. Everything is owned by root, keeps the overlay's permission bits
// and gets mtime 0 (clamping happens later; the overlay's own mtimes
// depend on the checkout and would make builds differ).
func copyOverlay(ctx context.Context, overlay, root string) error {
	w, done, err := newRootWriter(root, "overlay")
	if err != nil {
		return err
	}
	defer done()
	return filepath.WalkDir(overlay, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("overlay: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(overlay, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return fmt.Errorf("overlay: %w", err)
		}
		mode := uint32(fi.Mode().Perm())
		if fi.Mode()&os.ModeSetuid != 0 {
			mode |= unix.S_ISUID
		}
		if fi.Mode()&os.ModeSetgid != 0 {
			mode |= unix.S_ISGID
		}
		if fi.Mode()&os.ModeSticky != 0 {
			mode |= unix.S_ISVTX
		}
		switch {
		case d.IsDir():
			if err := w.Mkdir(rel); err != nil {
				return err
			}
			dfd, base, err := w.Parent(rel)
			if err != nil {
				return err
			}
			if err := unix.Fchownat(dfd, base, 0, 0, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			return unix.Fchmodat(dfd, base, mode, 0)
		case fi.Mode().IsRegular():
			data, err := readFileLimited(p)
			if err != nil {
				return fmt.Errorf("overlay: %w", err)
			}
			if err := w.PutFile(rel, data, mode); err != nil {
				return fmt.Errorf("overlay: %w", err)
			}
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("overlay: %w", err)
			}
			dfd, base, err := w.Parent(rel)
			if err != nil {
				return err
			}
			if err := unix.Unlinkat(dfd, base, 0); err != nil && err != unix.ENOENT {
				return fmt.Errorf("overlay: replacing /%s: %w", rel, err)
			}
			if err := unix.Symlinkat(target, dfd, base); err != nil {
				return fmt.Errorf("overlay: /%s: %w", rel, err)
			}
		default:
			return fmt.Errorf("overlay: %s: only directories, files and symlinks can be overlaid", p)
		}
		dfd, base, err := w.Parent(rel)
		if err != nil {
			return err
		}
		return unix.UtimesNanoAt(dfd, base, []unix.Timespec{{}, {}}, unix.AT_SYMLINK_NOFOLLOW)
	})
}

func readFileLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<30))
}

// writeBaseFiles writes what a bootstrap tool (debootstrap, mmdebstrap)
// adds to a root besides the packages: apt's sources.list for the locked
// repositories, apt's record of automatically installed packages, and the
// placeholder fstab. (The build host's hostname and resolv.conf, which
// mmdebstrap copies in, are left out on purpose: see the noise list.)
func writeBaseFiles(root string, in *Input, pkgs []*dpkgdb.Package, essential map[int]bool) error {
	if fi, err := os.Lstat(filepath.Join(root, "etc/apt")); in.SourcesList != "" && err == nil && fi.IsDir() {
		if err := writeRootFile(root, "etc/apt/sources.list", []byte(in.SourcesList), 0o644); err != nil {
			return err
		}
	}
	if fi, err := os.Lstat(filepath.Join(root, "etc")); err != nil || !fi.IsDir() {
		return nil // not a Debian root at all
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/fstab")); os.IsNotExist(err) {
		if err := writeRootFile(root, "etc/fstab", []byte("# UNCONFIGURED FSTAB FOR BASE SYSTEM\n"), 0o644); err != nil {
			return err
		}
	}
	if err := aptPartialDirs(root); err != nil {
		return err
	}
	requested := map[string]bool{}
	for _, p := range in.Packages {
		if p.Requested {
			requested[p.Name] = true
		}
	}
	var auto []string
	for i, p := range pkgs {
		if !essential[i] && p.Control.Get("Priority") != "required" && !requested[p.Name()] {
			auto = append(auto, p.Name())
		}
	}
	if len(auto) == 0 {
		return nil
	}
	sort.Strings(auto)
	var b strings.Builder
	for _, name := range auto {
		fmt.Fprintf(&b, "Package: %s\nArchitecture: %s\nAuto-Installed: 1\n\n", name, in.Architecture)
	}
	if fi, err := os.Lstat(filepath.Join(root, "var/lib/apt")); err != nil || !fi.IsDir() {
		return nil // no apt in this image
	}
	return writeRootFile(root, "var/lib/apt/extended_states", []byte(b.String()), 0o644)
}

// essentialSet is the index set of packages mmdebstrap installs in its
// first, "essential" phase: every Essential: yes package and, through
// Pre-Depends and Depends, everything it needs.
func essentialSet(ctls []*deb.Control) (map[int]bool, error) {
	byName := map[string]int{}
	provides := map[string]int{}
	for i, c := range ctls {
		byName[c.Package()] = i
		rels, err := c.Relations("Provides")
		if err != nil {
			return nil, err
		}
		for _, r := range rels {
			if _, ok := provides[r[0].Name]; !ok {
				provides[r[0].Name] = i
			}
		}
	}
	set := map[int]bool{}
	var queue []int
	for i, c := range ctls {
		if strings.EqualFold(strings.TrimSpace(c.Get("Essential")), "yes") {
			set[i] = true
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, field := range []string{"Pre-Depends", "Depends"} {
			rels, err := ctls[i].Relations(field)
			if err != nil {
				return nil, err
			}
			for _, alts := range rels {
				for _, alt := range alts {
					name := alt.Name
					j, ok := byName[name]
					if !ok {
						j, ok = provides[name]
					}
					if ok {
						if !set[j] {
							set[j] = true
							queue = append(queue, j)
						}
						break
					}
				}
			}
		}
	}
	return set, nil
}

// preplaceConffiles copies the unpacked PATH.dpkg-new of every conffile
// of the given packages to PATH (same content, owner, mode and mtime).
// dpkg --configure then finds the file it is about to install already
// there, unchanged, which is what it sees after mmdebstrap's extraction.
func preplaceConffiles(root string, pkgs []*dpkgdb.Package, which map[int]bool) error {
	w, done, err := newRootWriter(root, "conffiles")
	if err != nil {
		return err
	}
	defer done()
	for i, p := range pkgs {
		if !which[i] {
			continue
		}
		for _, c := range p.Control.Conffiles() {
			rel, err := images.CleanPath(c)
			if err != nil || rel == "." {
				continue
			}
			dfd, base, err := w.Parent(rel)
			if err != nil {
				continue // a conffile the package does not ship
			}
			var st unix.Stat_t
			if err := unix.Fstatat(dfd, base+".dpkg-new", &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
				continue
			}
			if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
				continue // already there (another package's file)
			}
			fd, err := unix.Openat(dfd, base+".dpkg-new", unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("%s: conffile %s: %w", p.Name(), c, err)
			}
			f := os.NewFile(uintptr(fd), c)
			data, err := io.ReadAll(io.LimitReader(f, 1<<30))
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: conffile %s: %w", p.Name(), c, err)
			}
			if err := unix.Fstatat(dfd, base+".dpkg-new", &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			if err := w.PutFile(rel, data, st.Mode&0o7777); err != nil {
				return err
			}
			dfd, base, _ = w.Parent(rel)
			if err := unix.Fchownat(dfd, base, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			if err := unix.Fchmodat(dfd, base, st.Mode&0o7777, 0); err != nil {
				return err
			}
			ts := []unix.Timespec{st.Mtim, st.Mtim}
			if err := unix.UtimesNanoAt(dfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
		}
	}
	return nil
}

// stageDir holds, per package with a preinst, its control files; the
// configure script moves each to /var/lib/dpkg/tmp.ci in turn, which is
// where dpkg runs a preinst from (debconf reads the package name there).
const stageDir = "/var/lib/dpkg/ingot-ci"

func stageControlFiles(root string, pkgs []*dpkgdb.Package) error {
	w, done, err := newRootWriter(root, "control files")
	if err != nil {
		return err
	}
	defer done()
	rel := strings.TrimPrefix(stageDir, "/")
	staged := false
	for _, p := range pkgs {
		if _, ok := p.Control.Files["preinst"]; !ok {
			continue
		}
		if !staged {
			if err := w.Mkdir(rel); err != nil {
				return err
			}
			staged = true
		}
		dir := rel + "/" + p.InfoName()
		if err := w.Mkdir(dir); err != nil {
			return err
		}
		for name, f := range p.Control.Files {
			mode := uint32(0o644)
			if f.Mode&0o111 != 0 {
				mode = 0o755
			}
			if err := w.PutFile(dir+"/"+name, f.Data, mode); err != nil {
				return err
			}
		}
	}
	return nil
}

// aptPartialDirs gives apt's partial download directories the owner and
// mode apt itself sets the first time it runs (_apt, 0700), as in a root
// made with apt (mmdebstrap's).
func aptPartialDirs(root string) error {
	data, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		return nil
	}
	uid := -1
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) > 3 && f[0] == "_apt" {
			if _, err := fmt.Sscan(f[2], &uid); err != nil {
				return fmt.Errorf("etc/passwd: _apt has uid %q: %w", f[2], err)
			}
		}
	}
	if uid < 0 {
		return nil
	}
	w, done, err := newRootWriter(root, "apt")
	if err != nil {
		return err
	}
	defer done()
	for _, d := range []string{"var/cache/apt/archives/partial", "var/lib/apt/lists/partial"} {
		dfd, base, err := w.Parent(d)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		if err := unix.Fchownat(dfd, base, uid, 0, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		if err := unix.Fchmodat(dfd, base, 0o700, 0); err != nil {
			return err
		}
	}
	return nil
}
