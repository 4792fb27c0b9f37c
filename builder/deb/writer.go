package deb

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ulikunitz/xz"
)

// The writer makes .deb files as dpkg-deb does, byte for byte the same
// for the same input: rpm2deb writes its packages with it.

// NewCompressor compresses a member with fixed settings, so that the same
// input always gives the same bytes: gzip level 9 with no name and no
// mtime; xz with an 8 MiB dictionary, CRC64 and one stream written by one
// goroutine. Only CompressGzip and CompressXZ are written.
func NewCompressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case CompressGzip:
		return gzip.NewWriterLevel(w, gzip.BestCompression)
	case CompressXZ:
		cfg := xz.WriterConfig{DictCap: 8 << 20, CheckSum: xz.CRC64}
		if err := cfg.Verify(); err != nil {
			return nil, err
		}
		return cfg.NewWriter(w)
	}
	return nil, fmt.Errorf("deb: writing %q members is not supported (want .gz or .xz)", c)
}

// ControlMember is one file of control.tar to write ("control",
// "postinst", "md5sums", …).
type ControlMember struct {
	Name string
	Mode int64
	Data []byte
}

// WriteControlTar writes an uncompressed control.tar as dpkg-deb does:
// "./" first, then the members sorted by name, owned by root, GNU format,
// every mtime the given one.
func WriteControlTar(w io.Writer, members []ControlMember, mtime int64) error {
	members = append([]ControlMember(nil), members...)
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	tw := tar.NewWriter(w)
	hdr := func(h *tar.Header) *tar.Header {
		h.Uname, h.Gname = "root", "root"
		h.ModTime = time.Unix(mtime, 0).UTC()
		h.Format = tar.FormatGNU
		return h
	}
	if err := tw.WriteHeader(hdr(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})); err != nil {
		return err
	}
	for _, m := range members {
		if err := tw.WriteHeader(hdr(&tar.Header{Name: "./" + m.Name, Typeflag: tar.TypeReg, Mode: m.Mode, Size: int64(len(m.Data))})); err != nil {
			return err
		}
		if _, err := tw.Write(m.Data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// WriteDeb writes the ar container of a .deb: debian-binary "2.0",
// control.tar<c> and data.tar<c> (already compressed with c; data is read
// to its end and must hold dataSize bytes), every member owned by 0/0,
// mode 100644, with the given mtime.
func WriteDeb(w io.Writer, c Compression, control []byte, data io.Reader, dataSize int64, mtime int64) error {
	return writeAr(w, []arMember{
		{"debian-binary", 4, strings.NewReader("2.0\n")},
		{"control.tar" + string(c), int64(len(control)), bytes.NewReader(control)},
		{"data.tar" + string(c), dataSize, data},
	}, mtime)
}

// arMember is one member of an ar archive to write.
type arMember struct {
	Name string
	Size int64
	Data io.Reader
}

// writeAr writes a System V ar archive as dpkg-deb does.
func writeAr(w io.Writer, members []arMember, mtime int64) error {
	if _, err := io.WriteString(w, arMagic); err != nil {
		return err
	}
	for _, m := range members {
		if len(m.Name) > 16 {
			return fmt.Errorf("ar member name %q too long", m.Name)
		}
		h := fmt.Sprintf("%-16s%-12s%-6s%-6s%-8s%-10s`\n", m.Name, strconv.FormatInt(mtime, 10), "0", "0", "100644", strconv.FormatInt(m.Size, 10))
		if _, err := io.WriteString(w, h); err != nil {
			return err
		}
		n, err := io.Copy(w, m.Data)
		if err != nil {
			return err
		}
		if n != m.Size {
			return fmt.Errorf("ar member %s: wrote %d bytes, expected %d", m.Name, n, m.Size)
		}
		if m.Size%2 == 1 {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
	}
	return nil
}
