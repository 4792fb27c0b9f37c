// Package atomicfile writes output files so that no reader, and no crash,
// ever sees half of one: the bytes go to a temporary file beside the
// target, which is synced and renamed over it, and the directory synced.
//
// A target that exists and is not a regular file (/dev/null, a pipe, a
// terminal) is written in place instead: renaming over it would replace
// a device node with a plain file.
package atomicfile

import (
	"fmt"
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
	done   bool
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
	fail := func(err error) error {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", f.target, err)
	}
	if err := f.Chmod(f.perm); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(f.Name(), f.target); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", f.target, err)
	}
	if d, err := os.Open(filepath.Dir(f.target)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("writing %s: syncing its directory: %w", f.target, err)
		}
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
	f.Close()
	if f.temp {
		os.Remove(f.Name())
	}
}

// WriteFile writes data to path atomically with mode perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Commit()
}
