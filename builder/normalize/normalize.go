package normalize

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Options tune a normalisation.
type Options struct {
	// SourceDateEpoch is the time every mtime is clamped to (seconds).
	SourceDateEpoch int64
	// Skip, when set, leaves a path (relative to the root, "usr/bin/x")
	// and everything below it alone.
	Skip func(rel string) bool
	// NoClamp leaves mtimes alone (contents are still normalised).
	NoClamp bool
}

// Change is one file normalize rewrote.
type Change struct {
	Path string // relative to the root given to Tree, or as given to File
	Kind string // "gzip", "pyc", "ar", "zip"
}

// Report says what a normalisation did.
type Report struct {
	Changes []Change
	Clamped int // paths whose mtime was clamped
}

// kind picks the normaliser for a file by name; the file's magic is
// checked before anything is rewritten.
func kind(name string) string {
	switch {
	case strings.HasSuffix(name, ".gz"), strings.HasSuffix(name, ".tgz"), strings.HasSuffix(name, ".dz"):
		return "gzip"
	case strings.HasSuffix(name, ".pyc"):
		return "pyc"
	case strings.HasSuffix(name, ".a"), strings.HasSuffix(name, ".deb"), strings.HasSuffix(name, ".udeb"):
		return "ar"
	case strings.HasSuffix(name, ".zip"), strings.HasSuffix(name, ".jar"), strings.HasSuffix(name, ".whl"),
		strings.HasSuffix(name, ".egg"), strings.HasSuffix(name, ".war"), strings.HasSuffix(name, ".ear"):
		return "zip"
	}
	return ""
}

// Tree normalises every file below root (symlinks are never followed)
// and clamps every mtime, directories last so that rewriting files does
// not disturb them.
func Tree(ctx context.Context, root string, opts Options) (*Report, error) {
	rep := &Report{}
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("normalize: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." && opts.Skip != nil && opts.Skip(filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		if d.Type().IsRegular() {
			if k := kind(d.Name()); k != "" {
				changed, err := normalizeFile(p, k, opts.SourceDateEpoch)
				if err != nil {
					return fmt.Errorf("normalize %s: %w", rel, err)
				}
				if changed {
					rep.Changes = append(rep.Changes, Change{Path: filepath.ToSlash(rel), Kind: k})
				}
			}
		}
		if !opts.NoClamp {
			c, err := clamp(p, opts.SourceDateEpoch)
			if err != nil {
				return err
			}
			if c {
				rep.Clamped++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !opts.NoClamp {
		for i := len(dirs) - 1; i >= 0; i-- {
			c, err := clamp(dirs[i], opts.SourceDateEpoch)
			if err != nil {
				return nil, err
			}
			if c {
				rep.Clamped++
			}
		}
	}
	return rep, nil
}

// File normalises one regular file by its name (gzip, pyc, ar, zip) and
// clamps its mtime. It reports whether the content changed.
func File(p string, sourceDateEpoch int64) (bool, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return false, err
	}
	changed := false
	if fi.Mode().IsRegular() {
		if k := kind(fi.Name()); k != "" {
			if changed, err = normalizeFile(p, k, sourceDateEpoch); err != nil {
				return false, fmt.Errorf("normalize %s: %w", p, err)
			}
		}
	}
	_, err = clamp(p, sourceDateEpoch)
	return changed, err
}

func normalizeFile(p, k string, sde int64) (bool, error) {
	switch k {
	case "gzip":
		return fixGzip(p)
	case "pyc":
		return fixPyc(p, sde)
	case "ar":
		return fixAr(p)
	case "zip":
		return fixZip(p, sde)
	}
	return false, nil
}

// clamp sets p's mtime (and atime) to sde when it is later; the mtime of
// the link itself for symlinks.
func clamp(p string, sde int64) (bool, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return false, fmt.Errorf("clamping mtime of %s: %w", p, err)
	}
	if st.Mtim.Sec < sde || (st.Mtim.Sec == sde && st.Mtim.Nsec == 0) {
		return false, nil
	}
	ts := []unix.Timespec{{Sec: sde}, {Sec: sde}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, fmt.Errorf("clamping mtime of %s: %w", p, err)
	}
	return true, nil
}

// rewriteInPlace opens p for read and write without following symlinks,
// lets fix change its bytes, and writes them back into the same inode,
// keeping its mtime (the caller clamps it).
func rewriteInPlace(p string, fix func(b []byte) ([]byte, bool, error)) (bool, error) {
	f, err := os.OpenFile(p, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false, err
	}
	defer func() { _ = f.Close() }() // closed and checked below; this is for the error paths
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false, err
	}
	if st.Size > 1<<30 {
		return false, nil // not worth holding in memory; left as is
	}
	b := make([]byte, st.Size)
	if _, err := f.ReadAt(b, 0); err != nil && st.Size > 0 {
		return false, err
	}
	nb, changed, err := fix(b)
	if err != nil || !changed {
		return false, err
	}
	if _, err := f.WriteAt(nb, 0); err != nil {
		return false, err
	}
	if len(nb) != len(b) {
		if err := f.Truncate(int64(len(nb))); err != nil {
			return false, err
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(st.Atim.Nano()), unix.NsecToTimespec(st.Mtim.Nano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, err
	}
	return true, f.Close()
}

const noFollow = unix.O_NOFOLLOW
