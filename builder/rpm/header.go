package rpm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Limits on an RPM header, as in the rpm library we hand it to.
const (
	maxHeaderTags = 1 << 16
	maxHeaderData = 32 << 20
)

func copyN(dst *bytes.Buffer, r io.Reader, n int64) error {
	m, err := io.CopyN(dst, r, n)
	if err == nil && m != n {
		err = io.ErrUnexpectedEOF
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// checkHeader reads one header structure (intro, index, data store and,
// for the signature, padding to 8 bytes) from r into dst, checking that
// every index entry's values fit in the data store.
func checkHeader(dst *bytes.Buffer, r io.Reader, pad bool) error {
	start := dst.Len()
	if err := copyN(dst, r, 16); err != nil {
		return fmt.Errorf("truncated")
	}
	intro := dst.Bytes()[start:]
	if intro[0] != 0x8e || intro[1] != 0xad || intro[2] != 0xe8 {
		return fmt.Errorf("bad magic % x", intro[:3])
	}
	count := binary.BigEndian.Uint32(intro[8:12])
	size := binary.BigEndian.Uint32(intro[12:16])
	if count == 0 || count > maxHeaderTags {
		return fmt.Errorf("%d tags", count)
	}
	if size > maxHeaderData {
		return fmt.Errorf("data store of %d bytes", size)
	}
	istart := dst.Len()
	if err := copyN(dst, r, int64(count)*16); err != nil {
		return fmt.Errorf("truncated in the index")
	}
	index := dst.Bytes()[istart:]
	for i := 0; i < int(count); i++ {
		e := index[i*16 : i*16+16]
		typ := binary.BigEndian.Uint32(e[4:8])
		off := uint64(binary.BigEndian.Uint32(e[8:12]))
		n := uint64(binary.BigEndian.Uint32(e[12:16]))
		var need uint64
		switch typ {
		case 0:
			continue
		case 1, 2, 7: // char, int8, binary
			need = n
		case 3:
			need = 2 * n
		case 4:
			need = 4 * n
		case 5:
			need = 8 * n
		case 6, 8, 9: // string, string array, i18n string: a NUL each at least
			need = n
		default:
			return fmt.Errorf("tag %d: unknown type %d", binary.BigEndian.Uint32(e[0:4]), typ)
		}
		if n == 0 || off+need > uint64(size) {
			return fmt.Errorf("tag %d: %d values at offset %d overrun the %d-byte data store", binary.BigEndian.Uint32(e[0:4]), n, off, size)
		}
	}
	n := int64(size)
	if pad {
		n += int64((8 - size%8) % 8)
	}
	if err := copyN(dst, r, n); err != nil {
		return fmt.Errorf("truncated in the data store")
	}
	return nil
}
