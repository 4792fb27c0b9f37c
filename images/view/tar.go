package view

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/imagetar"
)

// Tar is an image in a tar file (plain, gzip or zstd). The contents of
// the files OpenTar was asked to keep are held in memory; other contents
// cost one more pass over the file.
type Tar struct {
	label string
	file  string
	m     *images.Manifest
	kept  map[images.Digest][]byte // content by sha256
}

// MaxKept bounds the content OpenTar keeps in memory.
const MaxKept = 256 << 20

// OpenTar reads the tar file at name into a manifest, keeping in memory
// the content of the regular files whose paths keep accepts (nil: none),
// at most MaxKept bytes in all.
func OpenTar(ctx context.Context, name string, keep func(path string) bool) (*Tar, error) {
	s := &Tar{label: name, file: name, kept: map[images.Digest][]byte{}}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("opening image tar: %w", err)
	}
	defer f.Close()
	var kept int
	s.m, err = imagetar.Read(ctx, f, imagetar.Options{Name: name}, func(e *images.Entry, r io.Reader) error {
		if keep == nil || !keep(e.Path) {
			return nil
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if kept += len(b); kept > MaxKept {
			return fmt.Errorf("files to keep in memory over %d MiB", MaxKept>>20)
		}
		s.kept[images.Sum(b)] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Name implements View.
func (s *Tar) Name() string { return s.label }

// Manifest implements View.
func (s *Tar) Manifest() *images.Manifest { return s.m }

// Forget drops the kept contents of every path not in keep, to hold less
// memory once they are no longer needed.
func (s *Tar) Forget(keep map[string]bool) {
	held := map[images.Digest]bool{}
	for p := range keep {
		if e := s.m.Lookup(p); e != nil {
			if e = s.m.Resolve(e); e != nil {
				held[e.SHA256] = true
			}
		}
	}
	for sum := range s.kept {
		if !held[sum] {
			delete(s.kept, sum)
		}
	}
}

// ReadFiles implements View. Contents are matched by sha256, so what is
// passed on is always what the manifest says.
func (s *Tar) ReadFiles(ctx context.Context, paths []string, fn func(string, io.Reader) error) error {
	want := map[images.Digest][]string{}
	sizes := map[int64]bool{}
	for _, p := range paths {
		e, err := regular(s.label, s.m, p)
		if err != nil {
			return err
		}
		if b, ok := s.kept[e.SHA256]; ok {
			if err := fn(p, bytes.NewReader(b)); err != nil {
				return err
			}
			continue
		}
		want[e.SHA256] = append(want[e.SHA256], p)
		sizes[e.Size] = true
	}
	if len(want) == 0 {
		return nil
	}
	f, err := os.Open(s.file)
	if err != nil {
		return fmt.Errorf("opening image tar: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer // reused: most files of a wanted size are not wanted
	_, err = imagetar.Read(ctx, f, imagetar.Options{Name: s.file}, func(e *images.Entry, r io.Reader) error {
		if !sizes[e.Size] {
			return nil
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return err
		}
		sum := images.Sum(buf.Bytes())
		for _, p := range want[sum] {
			if err := fn(p, bytes.NewReader(buf.Bytes())); err != nil {
				return err
			}
		}
		delete(want, sum)
		return nil
	})
	if err != nil {
		return err
	}
	for _, ps := range want {
		return fmt.Errorf("%s: the content of /%s changed since the tar was first read", s.label, images.Escape(ps[0]))
	}
	return nil
}
