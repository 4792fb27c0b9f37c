package imagetar

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/ingotfleet/ingot/images"
)

// VerifiedContent may be implemented by the reader an images.OpenFunc
// returns when its source has already checked the whole content against a
// sha256 (a content-addressed store does, as it reads): Write then does
// not hash it again if VerifiedSHA256 equals the entry's SHA256. The size
// is checked regardless.
type VerifiedContent interface {
	VerifiedSHA256() images.Digest
}

// emptySHA256 is the content hash of an empty file.
var emptySHA256 = images.Sum(nil)

// Write writes m as a deterministic PAX tar: one entry per manifest
// entry, in manifest order, names "./path" (directories "./path/", the
// root "./"), numeric ids plus names, mtime only (no atime or ctime), every
// header in PAX format as archive/tar lays it out. A hardlink is a link
// entry pointing at the first path of its group and carries that file's
// attributes, as GNU tar writes it. Xattrs are SCHILY.xattr.* records
// with the name encoded as GNU tar does ('%' and '=' as %25 and %3D); a
// name holding '%', '=' or a byte outside printable ASCII also gets a
// LIBARCHIVE.xattr.* record (name %-encoded, value base64), as bsdtar
// writes it.
// Sockets cannot be archived and are left out, as GNU tar does.
//
// open is called once per non-empty regular file; the content it gives must
// match the entry's Size and SHA256, or Write fails, leaving a partial
// archive in w that the caller must discard. Compress by passing a writer
// from compression.NewCompressor.
func Write(ctx context.Context, w io.Writer, m *images.Manifest, open images.OpenFunc) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("writing tar: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	tw := tar.NewWriter(bw)
	for i := range m.Entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &m.Entries[i]
		if e.Type == images.TypeSocket {
			continue
		}
		if err := tw.WriteHeader(tarHeader(m, e)); err != nil {
			return fmt.Errorf("writing tar header of %s: %w", images.DisplayPath(e.Path), err)
		}
		if e.Type != images.TypeFile {
			continue
		}
		if err := writeContent(ctx, tw, e, open); err != nil {
			return fmt.Errorf("writing tar: content of %s: %w", images.DisplayPath(e.Path), err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing tar: %w", err)
	}
	return bw.Flush()
}

// tarName is how Write names path p.
func tarName(p string, dir bool) string {
	switch {
	case p == ".":
		return "./"
	case dir:
		return "./" + p + "/"
	}
	return "./" + p
}

// tarHeader is the header Write writes for e.
func tarHeader(m *images.Manifest, e *images.Entry) *tar.Header {
	a := m.Resolve(e) // Validate made sure it exists
	h := &tar.Header{
		Name:     tarName(e.Path, e.Type == images.TypeDir),
		Mode:     int64(a.Mode),
		Uid:      a.UID,
		Gid:      a.GID,
		Uname:    a.Uname,
		Gname:    a.Gname,
		ModTime:  time.Unix(a.Mtime, 0),
		Format:   tar.FormatPAX,
		Devmajor: int64(a.DevMajor),
		Devminor: int64(a.DevMinor),
	}
	switch e.Type {
	case images.TypeFile:
		h.Typeflag = tar.TypeReg
		h.Size = e.Size
	case images.TypeDir:
		h.Typeflag = tar.TypeDir
	case images.TypeSymlink:
		h.Typeflag = tar.TypeSymlink
		h.Linkname = e.Link
	case images.TypeHardlink:
		h.Typeflag = tar.TypeLink
		h.Linkname = tarName(e.Link, false)
	case images.TypeChar:
		h.Typeflag = tar.TypeChar
	case images.TypeBlock:
		h.Typeflag = tar.TypeBlock
	case images.TypeFifo:
		h.Typeflag = tar.TypeFifo
	}
	if len(a.Xattrs) > 0 {
		h.PAXRecords = make(map[string]string, len(a.Xattrs))
		for k, v := range a.Xattrs {
			h.PAXRecords["SCHILY.xattr."+gnuEncodeXattrName(k)] = v
			if xattrNameNeedsEncoding(k) {
				h.PAXRecords["LIBARCHIVE.xattr."+percentEncode(k)] = base64.StdEncoding.EncodeToString([]byte(v))
			}
		}
	}
	return h
}

// gnuEncodeXattrName is how GNU tar puts an xattr name in a SCHILY.xattr
// key: '%' as %25 and '=' (which would end the key) as %3D, every other
// byte as it is. GNU tar decodes the same two escapes when it reads.
func gnuEncodeXattrName(k string) string {
	if !strings.ContainsAny(k, "%=") {
		return k
	}
	return strings.NewReplacer("%", "%25", "=", "%3D").Replace(k)
}

// gnuDecodeXattrName is the inverse of gnuEncodeXattrName, as GNU tar
// reads SCHILY.xattr keys: %3D and %25 decoded, any other '%' kept.
func gnuDecodeXattrName(k string) string {
	if !strings.Contains(k, "%") {
		return k
	}
	return strings.NewReplacer("%3D", "=", "%25", "%").Replace(k)
}

// xattrNameNeedsEncoding reports whether xattr name k also gets a
// LIBARCHIVE.xattr record: libarchive reads SCHILY.xattr keys without
// decoding them, so a name holding '%' or '=' reaches it only that way;
// a name with bytes outside printable ASCII gets one too, as bsdtar
// writes it.
func xattrNameNeedsEncoding(k string) bool {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c == '%' || c == '=' || c <= ' ' || c >= 0x7f {
			return true
		}
	}
	return false
}

// percentEncode writes k as libarchive names LIBARCHIVE.xattr records:
// '%', '=' and every byte outside printable ASCII as %XX.
func percentEncode(k string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '%' || c == '=' || c <= ' ' || c >= 0x7f {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// writeContent copies e's content from open into tw, checking it against
// e.Size and e.SHA256.
func writeContent(ctx context.Context, tw io.Writer, e *images.Entry, open images.OpenFunc) error {
	if e.Size == 0 {
		if e.SHA256 != emptySHA256 {
			return fmt.Errorf("size 0 but sha256 %s", e.SHA256)
		}
		return nil
	}
	if open == nil {
		return fmt.Errorf("no content source")
	}
	rc, err := open(ctx, e)
	if err != nil {
		return err
	}
	defer rc.Close()
	var h hash.Hash
	dst := tw
	if v, ok := rc.(VerifiedContent); !ok || v.VerifiedSHA256() != e.SHA256 {
		h = sha256.New()
		dst = io.MultiWriter(tw, h)
	}
	n, err := io.Copy(dst, io.LimitReader(rc, e.Size))
	if err != nil {
		return err
	}
	if n < e.Size {
		return fmt.Errorf("%d bytes, the manifest says %d", n, e.Size)
	}
	var one [1]byte
	if k, _ := io.ReadFull(rc, one[:]); k > 0 {
		return fmt.Errorf("longer than the %d bytes the manifest says", e.Size)
	}
	if h == nil {
		return nil
	}
	if got := images.Digest(h.Sum(nil)); got != e.SHA256 {
		return fmt.Errorf("sha256 %s, the manifest says %s", got, e.SHA256)
	}
	return nil
}
