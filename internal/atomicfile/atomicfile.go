// Package atomicfile writes output files so that no reader, and no crash,
// ever sees half of one: the bytes go to a temporary file beside the
// target, which is synced and renamed over it, and the directory synced.
//
// A target that exists and is not a regular file (/dev/null, a pipe, a
// terminal) is written in place instead: renaming over it would replace
// a device node with a plain file.
//
// WriteNew is the variant for files that must never replace another
// (secret keys, a CA's key and certificate): it fails when the target
// exists. CreateVolatile and WriteVolatile skip the syncs, for reports a
// crash may lose. SyncDir syncs a directory and returns every error.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File is an output file being written. Write to it, then Commit; Abort
// (safe to defer, a no-op after Commit) throws the bytes away.
type File struct {
	*os.File
	target string
	perm   os.FileMode
	temp   bool // written beside the target, renamed on Commit
	// volatile: neither the file nor its directory is synced.
	volatile bool
	done     bool
}

// Create starts writing path, which will have mode perm.
func Create(path string, perm os.FileMode) (*File, error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return nil, fmt.Errorf("writing %s: is a directory", path)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
		return &File{File: f, target: path}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return &File{File: f, target: path, perm: perm, temp: true}, nil
}

// Commit makes the written bytes the content of the target.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("writing %s: already committed or aborted", f.target)
	}
	f.done = true
	if !f.temp {
		if err := f.Close(); err != nil {
			return fmt.Errorf("writing %s: %w", f.target, err)
		}
		return nil
	}
	fail := func(err error) error { // the write failed: drop the temporary file
		_ = f.Close()
		_ = os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", f.target, err)
	}
	if err := f.Chmod(f.perm); err != nil {
		return fail(err)
	}
	if !f.volatile {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(f.Name(), f.target); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", f.target, err)
	}
	if f.volatile {
		return nil
	}
	if err := SyncDir(filepath.Dir(f.target)); err != nil {
		return fmt.Errorf("writing %s: %w", f.target, err)
	}
	return nil
}

// SyncDir makes the entries of dir (a rename, a link, a removal) durable.
// Every error is returned: a rename that may not survive a crash is not
// done.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// WriteNew creates path with data and mode perm (0o600 for a secret key)
// only if nothing is there: never over an existing file, not even one
// made meanwhile by another process (the bytes are written and synced
// beside the target, then hard-linked to it, which fails if it exists).
// A reader or a crash sees no file or the whole file. The error for an
// existing path wraps fs.ErrExist.
func WriteNew(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // gone already after a link
	fail := func(err error) error {
		_ = tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Remove(tmp.Name()); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// Abort discards what was written; the target is left as it was (a
// device or pipe written in place keeps what already went through).
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	_ = f.Close() // what was written is thrown away
	if f.temp {
		_ = os.Remove(f.Name())
	}
}

// WriteFile writes data to path atomically with mode perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// CreateVolatile is Create without the syncs: a crash may leave the old
// content (or, on filesystems that do not order data before renames, an
// empty file), but no reader ever sees half of one. Only for files a
// crash may lose (reports, caches).
func CreateVolatile(path string, perm os.FileMode) (*File, error) {
	f, err := Create(path, perm)
	if err != nil {
		return nil, err
	}
	f.volatile = true
	return f, nil
}

// Write writes path atomically with mode perm, its bytes from fill.
func Write(path string, perm os.FileMode, fill func(io.Writer) error) error {
	return write(Create, path, perm, fill)
}

// WriteVolatile is Write without the syncs (see CreateVolatile).
func WriteVolatile(path string, perm os.FileMode, fill func(io.Writer) error) error {
	return write(CreateVolatile, path, perm, fill)
}

func write(create func(string, os.FileMode) (*File, error), path string, perm os.FileMode, fill func(io.Writer) error) error {
	f, err := create(path, perm)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Abort()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Commit()
}
