package rpm

import (
	"errors"
	"fmt"
	"io"
	"strconv"
)

// cpio formats in RPM payloads: "070701" (SVR4 newc), "070702" (newc with
// a checksum field, read the same way) and rpm's stripped "07070X" form
// (rpm ≥ 4.12, packages with files of 4 GiB or more), whose header is only
// the magic and an 8-hex-digit index into the RPM header's file list: the
// name, size and attributes all come from the RPM header.
const (
	cpioNewc     = "070701"
	cpioCRC      = "070702"
	cpioStripped = "07070X"
	cpioTrailer  = "TRAILER!!!"
	maxCpioName  = 4096
)

// ErrBadCpio is wrapped by every error about a malformed payload archive.
var ErrBadCpio = errors.New("rpm2deb: malformed cpio payload")

// CpioHeader is one member of a cpio archive.
type CpioHeader struct {
	Name  string // as stored (newc); "" for stripped members
	Index int    // stripped members: index into the RPM file list; else -1
	Mode  uint32
	Nlink uint32
	Size  int64
	Ino   uint32
}

// CpioReader reads a cpio archive member by member, like archive/tar.
type CpioReader struct {
	r      io.Reader
	off    int64 // bytes consumed so far, for alignment and errors
	remain int64 // unread bytes of the current member's data
	pad    int64 // padding after the current member's data
	// strippedSize gives the data size of a stripped member, which only
	// the RPM header knows.
	strippedSize func(index int) (int64, error)
	done         bool
}

func NewCpioReader(r io.Reader, strippedSize func(int) (int64, error)) *CpioReader {
	return &CpioReader{r: r, strippedSize: strippedSize}
}

func (c *CpioReader) readFull(b []byte) error {
	n, err := io.ReadFull(c.r, b)
	c.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: truncated at byte %d", ErrBadCpio, c.off)
		}
		return err
	}
	return nil
}

func (c *CpioReader) skip(n int64) error {
	if n == 0 {
		return nil
	}
	m, err := io.CopyN(io.Discard, c.r, n)
	c.off += m
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: truncated at byte %d", ErrBadCpio, c.off)
		}
		return err
	}
	return nil
}

func align4(n int64) int64 { return (4 - n%4) % 4 }

// Next advances to the next member. It returns io.EOF after the trailer.
func (c *CpioReader) Next() (*CpioHeader, error) {
	if c.done {
		return nil, io.EOF
	}
	if err := c.skip(c.remain + c.pad); err != nil {
		return nil, err
	}
	c.remain, c.pad = 0, 0
	start := c.off
	var magic [6]byte
	if err := c.readFull(magic[:]); err != nil {
		return nil, err
	}
	switch string(magic[:]) {
	case cpioStripped:
		var ix [8]byte
		if err := c.readFull(ix[:]); err != nil {
			return nil, err
		}
		v, err := strconv.ParseUint(string(ix[:]), 16, 32)
		if err != nil || v > 1<<30 {
			return nil, fmt.Errorf("%w: stripped member at byte %d: bad file index %q", ErrBadCpio, start, ix[:])
		}
		if err := c.skip(align4(c.off)); err != nil {
			return nil, err
		}
		if c.strippedSize == nil {
			return nil, fmt.Errorf("%w: stripped member at byte %d outside an RPM", ErrBadCpio, start)
		}
		size, err := c.strippedSize(int(v))
		if err != nil {
			return nil, fmt.Errorf("%w: stripped member at byte %d: %v", ErrBadCpio, start, err)
		}
		c.remain, c.pad = size, align4(size)
		return &CpioHeader{Index: int(v), Size: size}, nil
	case cpioNewc, cpioCRC:
	default:
		return nil, fmt.Errorf("%w: bad magic %q at byte %d", ErrBadCpio, magic[:], start)
	}
	var raw [104]byte
	if err := c.readFull(raw[:]); err != nil {
		return nil, err
	}
	var f [13]uint64
	for i := range f {
		v, err := strconv.ParseUint(string(raw[i*8:i*8+8]), 16, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: member at byte %d: bad header field %q", ErrBadCpio, start, raw[i*8:i*8+8])
		}
		f[i] = v
	}
	// ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
	namesize := f[11]
	if namesize == 0 || namesize > maxCpioName {
		return nil, fmt.Errorf("%w: member at byte %d: name size %d", ErrBadCpio, start, namesize)
	}
	name := make([]byte, namesize)
	if err := c.readFull(name); err != nil {
		return nil, err
	}
	if name[namesize-1] != 0 {
		return nil, fmt.Errorf("%w: member at byte %d: name not NUL-terminated", ErrBadCpio, start)
	}
	h := &CpioHeader{
		Name:  string(name[:namesize-1]),
		Index: -1,
		Ino:   uint32(f[0]),
		Mode:  uint32(f[1]),
		Nlink: uint32(f[4]),
		Size:  int64(f[6]),
	}
	if err := c.skip(align4(c.off)); err != nil {
		return nil, err
	}
	if h.Name == cpioTrailer {
		c.done = true
		return nil, io.EOF
	}
	c.remain, c.pad = h.Size, align4(h.Size)
	return h, nil
}

// Read reads the current member's data.
func (c *CpioReader) Read(b []byte) (int, error) {
	if c.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > c.remain {
		b = b[:c.remain]
	}
	n, err := c.r.Read(b)
	c.off += int64(n)
	c.remain -= int64(n)
	if err == io.EOF {
		if c.remain > 0 {
			return n, fmt.Errorf("%w: truncated at byte %d", ErrBadCpio, c.off)
		}
		err = nil
	}
	return n, err
}
