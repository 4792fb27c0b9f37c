package carry

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/atomicfile"
	"github.com/ingotfleet/ingot/internal/glob"
	"github.com/ingotfleet/ingot/pusher"
)

// TakeSnapshot writes to file a gzip-compressed tar of the host's
// configuration in root: the carried local paths and every /etc path
// that differs from base (all of /etc when base is nil). skip leaves
// paths out. It returns the number of entries.
func TakeSnapshot(ctx context.Context, root *pusher.Tree, base *images.Manifest, carry []string, skip func(string) bool, file string) (int, error) {
	globs, err := glob.CompileSet(carry)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return 0, err
	}
	out, err := atomicfile.Create(file, 0o600)
	if err != nil {
		return 0, err
	}
	defer out.Abort()
	zw := gzip.NewWriter(out)
	tw := tar.NewWriter(zw)
	c := &Carry{Booted: root, globs: globs, Carry: carry}
	sw := &snapshotWriter{ctx: ctx, root: root, tw: tw, skip: skip}
	add := sw.add
	// /etc paths that differ from the image, with their directories.
	err = c.walk("etc", func(p string, e images.Entry) error {
		if skip != nil && skip(p) {
			return fs.SkipDir
		}
		if e.Type == images.TypeDir || globs.Match(p) || c.underCarried(p) {
			return add(p, e)
		}
		h := &Version{Entry: e}
		if e.Type == images.TypeFile {
			b, err := root.ReadFile(p, maxEtcFile)
			if err != nil {
				return err
			}
			h.Entry.SHA256 = images.Sum(b)
		}
		if base != nil {
			if be := base.Lookup(p); be != nil {
				if r := base.Resolve(be); r != nil && same(h, &Version{Entry: *r}) {
					return nil
				}
			}
		}
		return add(p, e)
	})
	if err != nil {
		return sw.n, err
	}
	for _, r := range c.carryRoots() {
		if r == "etc" || strings.HasPrefix(r, "etc/") {
			continue // taken above
		}
		err := c.walk(r, func(p string, e images.Entry) error {
			if skip != nil && skip(p) {
				return fs.SkipDir
			}
			if globs.Match(p) || c.underCarried(p) || e.Type == images.TypeDir {
				return add(p, e)
			}
			return nil
		})
		if err != nil {
			return sw.n, err
		}
	}
	if err := tw.Close(); err != nil {
		return sw.n, err
	}
	if err := zw.Close(); err != nil {
		return sw.n, err
	}
	return sw.n, out.Commit()
}

// snapshotWriter writes a snapshot's entries and counts them.
type snapshotWriter struct {
	ctx  context.Context
	root *pusher.Tree
	tw   *tar.Writer
	skip func(string) bool
	n    int
}

// add writes path p (a directory, symlink or file; others are left out).
func (w *snapshotWriter) add(p string, e images.Entry) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if w.skip != nil && w.skip(p) {
		return fs.SkipDir
	}
	h := &tar.Header{Name: p, Mode: int64(e.Mode), Uid: e.UID, Gid: e.GID, Format: tar.FormatPAX}
	switch e.Type {
	case images.TypeDir:
		h.Typeflag, h.Name = tar.TypeDir, p+"/"
	case images.TypeSymlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
	case images.TypeFile:
		h.Typeflag, h.Size = tar.TypeReg, e.Size
	default:
		return nil
	}
	if err := w.tw.WriteHeader(h); err != nil {
		return err
	}
	w.n++
	if e.Type == images.TypeFile {
		f, err := w.root.Open(p)
		if err != nil {
			return err
		}
		_, err = io.CopyN(w.tw, f, e.Size)
		f.Close()
		if err != nil {
			return fmt.Errorf("snapshot of %s: %w", p, err)
		}
	}
	return nil
}

// RestoreSnapshot writes a snapshot's entries back into root (beneath
// it, never through a symlink) and returns how many it wrote.
func RestoreSnapshot(ctx context.Context, file string, root *pusher.Tree) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", file, err)
	}
	tr := tar.NewReader(zr)
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n, root.Sync()
		}
		if err != nil {
			return n, fmt.Errorf("%s: %w", file, err)
		}
		p, err := images.CleanPath(h.Name)
		if err != nil || p == "." {
			return n, fmt.Errorf("%s: bad path %q", file, h.Name)
		}
		mode := uint32(h.Mode) & images.ModePerm
		switch h.Typeflag {
		case tar.TypeDir:
			err = root.Mkdir(p, mode, h.Uid, h.Gid)
		case tar.TypeSymlink:
			err = root.Symlink(p, h.Linkname, h.Uid, h.Gid)
		case tar.TypeReg:
			err = root.WriteFile(p, tr, mode, h.Uid, h.Gid)
		default:
			continue
		}
		if err != nil {
			return n, err
		}
		n++
	}
}
