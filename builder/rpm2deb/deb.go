package rpm2deb

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/builder/rpm2deb/debmap"
	"github.com/ingotfleet/ingot/images"
)

// Compression of the .deb's control and data members.
type Compression int

const (
	CompressXZ Compression = iota // dpkg-deb's default
	CompressGzip
)

// ParseCompression reads "xz" or "gzip".
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "xz", "":
		return CompressXZ, nil
	case "gzip", "gz":
		return CompressGzip, nil
	}
	return 0, fmt.Errorf("unknown compression %q (want xz or gzip)", s)
}

func (c Compression) ext() string { return string(c.deb()) }

// deb is the member suffix builder/deb writes for c.
func (c Compression) deb() deb.Compression {
	if c == CompressGzip {
		return deb.CompressGzip
	}
	return deb.CompressXZ
}

// newCompressor is builder/deb's deterministic compressor.
func newCompressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	return deb.NewCompressor(w, c.deb())
}

// debFile is one member of the data archive.
type debFile struct {
	Path         string // entry path ("usr/bin/foo"; "." for the root)
	Type         images.Type
	Mode         uint32 // permissions with setuid/setgid/sticky
	User, Group  string
	Mtime        int64
	Size         int64
	Link         string // symlink target, or hardlink target path
	Major, Minor uint32
	off          int64 // content offset in the spool
	MD5          string
	content      []byte // content written by the converter (changelog, copyright)
}

// writeDataTar writes files (sorted) as a tar like dpkg-deb's: "./"
// prefixes, directories with a trailing "/", GNU format, numeric ids 0
// with the owner names (dpkg maps names to ids at unpack time).
func writeDataTar(ctx context.Context, w io.Writer, files []*debFile, spool io.ReaderAt) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := "./"
		if f.Path != "." {
			name += f.Path
		}
		h := &tar.Header{
			Name:    name,
			Mode:    int64(f.Mode),
			Uname:   f.User,
			Gname:   f.Group,
			ModTime: unixTime(f.Mtime),
			Format:  tar.FormatGNU,
		}
		switch f.Type {
		case images.TypeDir:
			h.Typeflag = tar.TypeDir
			if f.Path != "." {
				h.Name += "/"
			}
		case images.TypeFile:
			h.Typeflag = tar.TypeReg
			h.Size = f.Size
		case images.TypeSymlink:
			h.Typeflag = tar.TypeSymlink
			h.Linkname = f.Link
		case images.TypeHardlink:
			h.Typeflag = tar.TypeLink
			h.Linkname = "./" + f.Link
		case images.TypeChar, images.TypeBlock:
			h.Typeflag = tar.TypeChar
			if f.Type == images.TypeBlock {
				h.Typeflag = tar.TypeBlock
			}
			h.Devmajor, h.Devminor = int64(f.Major), int64(f.Minor)
		case images.TypeFifo:
			h.Typeflag = tar.TypeFifo
		default:
			return fmt.Errorf("%s: a .deb cannot hold a %s", f.Path, f.Type)
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
		if f.Type == images.TypeFile {
			var src io.Reader
			if f.content != nil {
				src = bytes.NewReader(f.content)
			} else {
				src = io.NewSectionReader(spool, f.off, f.Size)
			}
			if _, err := io.Copy(tw, src); err != nil {
				return fmt.Errorf("writing %s: %w", f.Path, err)
			}
		}
	}
	return tw.Close()
}

// controlMember is one file of control.tar.
type controlMember = deb.ControlMember

// compressed runs fn into a compressor over a buffer.
func compressed(c Compression, fn func(io.Writer) error) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := newCompressor(&buf, c)
	if err != nil {
		return nil, err
	}
	if err := fn(zw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// controlField formats one field of a control file, folding a multi-line
// value as deb-control(5) wants.
func controlField(b *strings.Builder, name, value string) {
	if value == "" {
		return
	}
	fmt.Fprintf(b, "%s: %s\n", name, value)
}

// formatDescription makes a Description field value: the synopsis, then
// the long description with each line indented by one space and empty
// lines written " .". A first line that only repeats the synopsis (equal
// once lowercased and stripped of all but letters and digits, as lintian
// compares them) is left out, and so are the empty lines after it; when
// nothing is left, the long description is fallback. It returns which of
// these it did ("" for neither).
func formatDescription(summary, desc, fallback string) (string, string) {
	syn := strings.TrimSpace(debmap.SanitizeLine(summary))
	lines := strings.Split(strings.ReplaceAll(desc, "\r\n", "\n"), "\n")
	trimBlank := func() {
		for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
			lines = lines[:len(lines)-1]
		}
		for len(lines) > 0 && (strings.TrimSpace(lines[0]) == "" || strings.TrimSpace(lines[0]) == ".") {
			lines = lines[1:]
		}
	}
	trimBlank()
	var note string
	if len(lines) > 0 && sameText(lines[0], syn) {
		lines = lines[1:]
		trimBlank()
		note = "the description's first line repeats the Summary: left out"
	}
	if len(lines) == 0 {
		lines = []string{fallback}
		if note == "" {
			note = "no description"
		}
		note += "; the long description says where the package came from"
	}
	var b strings.Builder
	b.WriteString(syn)
	for _, l := range lines {
		l = strings.TrimRight(debmap.SanitizeLine(strings.ReplaceAll(l, "\t", "    ")), " ")
		if l == "" || l == "." {
			b.WriteString("\n .")
			continue
		}
		b.WriteString("\n " + l)
	}
	return b.String(), note
}

// sameText compares two lines as lintian's
// description-synopsis-is-duplicated does: lowercased, letters and
// digits only.
func sameText(a, b string) bool {
	key := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
				return r
			case r >= 'A' && r <= 'Z':
				return r + 'a' - 'A'
			}
			return -1
		}, s)
	}
	return key(a) == key(b)
}
