package deb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

const arMagic = "!<arch>\n"

// arHeader is one member header of an ar archive.
type arHeader struct {
	Name string
	Size int64
	Mode int64
}

// arReader reads the members of an ar archive in order.
type arReader struct {
	r         *bufio.Reader
	remaining int64 // bytes of the current member not yet read
	pad       bool  // the current member is followed by a padding byte
	offset    int64 // of the next header, for error messages
}

func newArReader(r io.Reader) (*arReader, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	magic := make([]byte, len(arMagic))
	if _, err := io.ReadFull(br, magic); err != nil {
		return nil, fmt.Errorf("not an ar archive: %w", noEOF(err))
	}
	if string(magic) != arMagic {
		return nil, errors.New("not an ar archive (bad magic)")
	}
	return &arReader{r: br, offset: int64(len(arMagic))}, nil
}

// next skips the rest of the current member and returns the next header,
// or io.EOF at the end of the archive.
func (a *arReader) next() (*arHeader, error) {
	if a.remaining > 0 {
		if _, err := io.CopyN(io.Discard, a.r, a.remaining); err != nil {
			return nil, fmt.Errorf("ar member truncated: %w", noEOF(err))
		}
		a.offset += a.remaining
		a.remaining = 0
	}
	if a.pad {
		if _, err := a.r.ReadByte(); err != nil {
			// A missing final padding byte is tolerated, as ar does.
			if err == io.EOF {
				return nil, io.EOF
			}
			return nil, err
		}
		a.offset++
		a.pad = false
	}
	var h [60]byte
	n, err := io.ReadFull(a.r, h[:])
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("ar header at offset %d truncated (%d of 60 bytes)", a.offset, n)
	}
	if h[58] != '`' || h[59] != '\n' {
		return nil, fmt.Errorf("ar header at offset %d: bad terminator", a.offset)
	}
	name := strings.TrimRight(string(h[0:16]), " ")
	name = strings.TrimSuffix(name, "/") // GNU ar
	size, err := strconv.ParseInt(strings.TrimRight(string(h[48:58]), " "), 10, 64)
	if err != nil || size < 0 {
		return nil, fmt.Errorf("ar header at offset %d: bad size %q", a.offset, strings.TrimSpace(string(h[48:58])))
	}
	mode, _ := strconv.ParseInt(strings.TrimRight(string(h[40:48]), " "), 8, 64)
	a.offset += 60
	a.remaining = size
	a.pad = size%2 == 1
	return &arHeader{Name: name, Size: size, Mode: mode}, nil
}

// Read reads from the current member.
func (a *arReader) Read(p []byte) (int, error) {
	if a.remaining <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > a.remaining {
		p = p[:a.remaining]
	}
	n, err := a.r.Read(p)
	a.remaining -= int64(n)
	a.offset += int64(n)
	if err == io.EOF && a.remaining > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
