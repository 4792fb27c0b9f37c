package deb

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Limits on what a package may make the reader hold in memory.
const (
	MaxControlMember = 64 << 20 // one file of control.tar
	MaxControlTotal  = 256 << 20
)

// ErrFormat is wrapped by every error about a malformed package.
var ErrFormat = errors.New("deb: malformed package")

// ControlFile is one member of control.tar.
type ControlFile struct {
	Mode int64
	Data []byte
}

// Control is the metadata of a package: its control paragraph and every
// file of control.tar (maintainer scripts, conffiles, md5sums, triggers,
// shlibs, symbols, templates, config…), by base name.
type Control struct {
	*Paragraph
	Files map[string]ControlFile
}

// Package is the package name (the Package field).
func (c *Control) Package() string { return c.Get("Package") }

// Relations parses one relationship field of the control (Depends,
// Pre-Depends, Provides, Replaces, ...; see ParseRelations); an error
// names the package and the field.
func (c *Control) Relations(field string) ([]Relation, error) {
	rels, err := ParseRelations(Decode(c.Get(field)))
	if err != nil {
		return nil, fmt.Errorf("package %s: %s: %w", c.Package(), field, err)
	}
	return rels, nil
}

// Conffiles lists the absolute paths of the conffiles file, in order.
// Lines with flags ("remove-on-upgrade /etc/x") give only the path.
func (c *Control) Conffiles() []string {
	f, ok := c.Files["conffiles"]
	if !ok {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(f.Data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		fields := strings.Fields(l)
		out = append(out, fields[len(fields)-1])
	}
	return out
}

// ReaderOptions tune a Reader; the zero value is the default.
type ReaderOptions struct {
	// GoXZ decompresses .xz members in Go even when the host has xz(1),
	// which is several times faster; the result is the same either way
	// (both check the stream's integrity).
	GoXZ bool
}

// Reader reads one .deb in a single pass: Control, then Data.
type Reader struct {
	opts    ReaderOptions
	name    string
	ar      *arReader
	control *Control
	data    bool
}

// NewReader starts reading a .deb from r; name is used in errors (the
// file name, or "package_version_arch").
func NewReader(r io.Reader, name string) (*Reader, error) {
	return NewReaderOptions(r, name, ReaderOptions{})
}

// NewReaderOptions is NewReader with options.
func NewReaderOptions(r io.Reader, name string, opts ReaderOptions) (*Reader, error) {
	ar, err := newArReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFormat, name, err)
	}
	d := &Reader{opts: opts, name: name, ar: ar}
	h, err := d.nextMember()
	if err != nil {
		return nil, err
	}
	if h.Name != "debian-binary" {
		return nil, d.errf("first member is %q, want debian-binary", h.Name)
	}
	v, err := io.ReadAll(io.LimitReader(d.ar, 64))
	if err != nil {
		return nil, d.errf("debian-binary: %v", err)
	}
	if !strings.HasPrefix(string(v), "2.") {
		return nil, d.errf("unsupported format version %q", strings.TrimSpace(string(v)))
	}
	return d, nil
}

func (d *Reader) errf(format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrFormat, d.name, fmt.Sprintf(format, args...))
}

// nextMember returns the next ar member, skipping the "_"-prefixed ones
// dpkg-deb allows between the known members.
func (d *Reader) nextMember() (*arHeader, error) {
	for {
		h, err := d.ar.next()
		if err == io.EOF {
			return nil, d.errf("unexpected end of archive")
		}
		if err != nil {
			return nil, d.errf("%v", err)
		}
		if strings.HasPrefix(h.Name, "_") {
			continue
		}
		return h, nil
	}
}

// Control reads control.tar. It must be called before Data, once.
func (d *Reader) Control() (*Control, error) {
	if d.control != nil {
		return d.control, nil
	}
	h, err := d.nextMember()
	if err != nil {
		return nil, err
	}
	base, comp, ok := memberCompression(h.Name)
	if !ok || base != "control" {
		return nil, d.errf("member %q where control.tar was expected", h.Name)
	}
	z, err := decompress(d.ar, comp, d.opts.GoXZ)
	if err != nil {
		return nil, d.errf("%s: %v", h.Name, err)
	}
	defer z.Close()
	c := &Control{Files: map[string]ControlFile{}}
	tr := tar.NewReader(z)
	var total int64
	for {
		th, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, d.errf("%s: %v", h.Name, err)
		}
		if th.Typeflag != tar.TypeReg {
			continue // "./" and anything odd: dpkg-deb only looks at regular files
		}
		name := path.Clean("/" + th.Name)[1:]
		if name == "" || strings.Contains(name, "/") {
			return nil, d.errf("%s: unexpected path %q", h.Name, th.Name)
		}
		if th.Size > MaxControlMember || total+th.Size > MaxControlTotal {
			return nil, d.errf("%s: %s is too large (%d bytes)", h.Name, name, th.Size)
		}
		total += th.Size
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, d.errf("%s: %s: %v", h.Name, name, err)
		}
		if _, dup := c.Files[name]; dup {
			return nil, d.errf("%s: %s appears twice", h.Name, name)
		}
		c.Files[name] = ControlFile{Mode: th.Mode, Data: b}
	}
	// Let the decompressor see the end of its stream (checksums).
	if _, err := io.Copy(io.Discard, z); err != nil {
		return nil, d.errf("%s: %v", h.Name, err)
	}
	cf, ok := c.Files["control"]
	if !ok {
		return nil, d.errf("%s has no control file", h.Name)
	}
	ps, err := ParseParagraphs(bytes.NewReader(cf.Data), d.name+": control")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if len(ps) != 1 {
		return nil, d.errf("control file has %d paragraphs, want 1", len(ps))
	}
	c.Paragraph = ps[0]
	if c.Package() == "" {
		return nil, d.errf("control file has no Package field")
	}
	d.control = c
	return c, nil
}

// Data returns the data.tar stream. Close it when done: Close also
// reports a corrupt compressed tail that the tar reader did not reach.
// Data calls Control first if needed.
func (d *Reader) Data() (*DataReader, error) {
	if d.data {
		return nil, d.errf("Data called twice")
	}
	if _, err := d.Control(); err != nil {
		return nil, err
	}
	d.data = true
	h, err := d.nextMember()
	if err != nil {
		return nil, err
	}
	base, comp, ok := memberCompression(h.Name)
	if !ok || base != "data" {
		return nil, d.errf("member %q where data.tar was expected", h.Name)
	}
	z, err := decompress(d.ar, comp, d.opts.GoXZ)
	if err != nil {
		return nil, d.errf("%s: %v", h.Name, err)
	}
	return &DataReader{tr: tar.NewReader(z), z: z, d: d, member: h.Name}, nil
}

// DataReader reads the entries of data.tar like a tar.Reader; its errors
// name the package and the entry.
type DataReader struct {
	tr     *tar.Reader
	z      io.ReadCloser
	d      *Reader
	member string
	cur    string
}

// Next advances to the next entry; io.EOF at the end.
func (r *DataReader) Next() (*tar.Header, error) {
	h, err := r.tr.Next()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		if r.cur != "" {
			return nil, r.d.errf("%s: after %s: %v", r.member, r.cur, noEOF(err))
		}
		return nil, r.d.errf("%s: %v", r.member, noEOF(err))
	}
	r.cur = h.Name
	return h, nil
}

// Read reads the content of the current entry.
func (r *DataReader) Read(p []byte) (int, error) {
	n, err := r.tr.Read(p)
	if err != nil && err != io.EOF {
		err = r.d.errf("%s: %s: %v", r.member, r.cur, noEOF(err))
	}
	return n, err
}

// Close drains the decompressed stream (so a corrupt tail is an error)
// and releases the decompressor.
func (r *DataReader) Close() error {
	_, err := io.Copy(io.Discard, r.z)
	_ = r.z.Close() // a decompressor: its stream's errors came from the Copy
	if err != nil {
		return r.d.errf("%s: %v", r.member, noEOF(err))
	}
	return nil
}

// Name is the name given to NewReader.
func (d *Reader) Name() string { return d.name }
