package normalize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Gzip header flags (RFC 1952).
const (
	gzFHCRC    = 1 << 1
	gzFEXTRA   = 1 << 2
	gzFNAME    = 1 << 3
	gzFCOMMENT = 1 << 4
)

// normGzip returns b with a `gzip -n` header: MTIME 0, no name, no comment,
// no header CRC, OS 3. Only the first member's header is touched.
func normGzip(b []byte) ([]byte, bool, error) {
	if len(b) < 18 || b[0] != 0x1f || b[1] != 0x8b || b[2] != 8 {
		return nil, false, nil // not gzip (or not deflate): leave alone
	}
	flg := b[3]
	if flg&0xe0 != 0 {
		return nil, false, errors.New("gzip header has reserved flags set")
	}
	pos := 10
	if flg&gzFEXTRA != 0 {
		if len(b) < pos+2 {
			return nil, false, errors.New("truncated gzip header")
		}
		pos += 2 + int(binary.LittleEndian.Uint16(b[pos:]))
	}
	extraEnd := pos
	for _, f := range []byte{gzFNAME, gzFCOMMENT} {
		if flg&f != 0 {
			i := bytes.IndexByte(b[min(pos, len(b)):], 0)
			if i < 0 {
				return nil, false, errors.New("truncated gzip header")
			}
			pos += i + 1
		}
	}
	if flg&gzFHCRC != 0 {
		pos += 2
	}
	if pos > len(b) {
		return nil, false, errors.New("truncated gzip header")
	}
	newFlg := flg &^ (gzFNAME | gzFCOMMENT | gzFHCRC)
	if newFlg == flg && binary.LittleEndian.Uint32(b[4:8]) == 0 && b[9] == 3 {
		return nil, false, nil
	}
	out := make([]byte, 0, len(b))
	out = append(out, b[0], b[1], b[2], newFlg, 0, 0, 0, 0, b[8], 3)
	out = append(out, b[10:extraEnd]...)
	out = append(out, b[pos:]...)
	return out, true, nil
}

func fixGzip(p string) (bool, error) { return rewriteInPlace(p, normGzip) }

// fixPyc sets a timestamp-based pyc's source mtime and size to those of
// its source file, with the source's mtime clamped as the tree will be.
func fixPyc(p string, sde int64) (bool, error) {
	src := pycSource(p)
	var st unix.Stat_t
	haveSrc := src != "" && unix.Stat(src, &st) == nil
	return rewriteInPlace(p, func(b []byte) ([]byte, bool, error) {
		if len(b) < 16 || b[2] != '\r' || b[3] != '\n' {
			return nil, false, nil // not a pyc we know
		}
		if binary.LittleEndian.Uint32(b[4:8]) != 0 {
			return nil, false, nil // hash-based: reproducible already
		}
		mtime := int64(binary.LittleEndian.Uint32(b[8:12]))
		size := binary.LittleEndian.Uint32(b[12:16])
		wantM, wantS := min(mtime, sde), size
		if haveSrc {
			wantM, wantS = min(st.Mtim.Sec, sde), uint32(st.Size)
		}
		if wantM == mtime && wantS == size {
			return nil, false, nil
		}
		out := bytes.Clone(b)
		binary.LittleEndian.PutUint32(out[8:12], uint32(wantM))
		binary.LittleEndian.PutUint32(out[12:16], wantS)
		return out, true, nil
	})
}

// pycSource finds the .py a .pyc was compiled from: d/__pycache__/m.TAG.pyc
// → d/m.py; d/m.pyc → d/m.py.
func pycSource(p string) string {
	dir, base := filepath.Split(p)
	if filepath.Base(dir) == "__pycache__" {
		mod, _, ok := strings.Cut(base, ".")
		if !ok {
			return ""
		}
		return filepath.Join(filepath.Dir(filepath.Clean(dir)), mod+".py")
	}
	return strings.TrimSuffix(p, "c")
}

// normAr gives every member header of an ar archive mtime 0, uid 0, gid 0
// and mode 644 (`ar D`).
func normAr(b []byte) ([]byte, bool, error) {
	if !bytes.HasPrefix(b, []byte("!<arch>\n")) {
		return nil, false, nil
	}
	out := bytes.Clone(b)
	changed := false
	pos := 8
	field := func(h []byte, off, width int, v string) {
		f := h[off : off+width]
		want := []byte(v + strings.Repeat(" ", width-len(v)))
		if !bytes.Equal(f, want) {
			copy(f, want)
			changed = true
		}
	}
	for pos < len(out) {
		if pos+60 > len(out) {
			if pos == len(out)-1 && out[pos] == '\n' {
				break
			}
			return nil, false, fmt.Errorf("ar member header at %d truncated", pos)
		}
		h := out[pos : pos+60]
		if h[58] != '`' || h[59] != '\n' {
			return nil, false, fmt.Errorf("ar member header at %d is corrupt", pos)
		}
		size, err := strconv.ParseInt(strings.TrimSpace(string(h[48:58])), 10, 64)
		if err != nil || size < 0 {
			return nil, false, fmt.Errorf("ar member header at %d: bad size", pos)
		}
		field(h, 16, 12, "0")
		field(h, 28, 6, "0")
		field(h, 34, 6, "0")
		field(h, 40, 8, "644")
		pos += 60 + int(size) + int(size%2)
	}
	return out, changed, nil
}

func fixAr(p string) (bool, error) { return rewriteInPlace(p, normAr) }

// dosTime is t (UTC) in MS-DOS date and time format.
func dosTime(t time.Time) (date, tim uint16) {
	t = t.UTC()
	if t.Year() < 1980 {
		return 1<<5 | 1, 0 // 1980-01-01 00:00:00
	}
	date = uint16((t.Year()-1980)<<9 | int(t.Month())<<5 | t.Day())
	tim = uint16(t.Hour()<<11 | t.Minute()<<5 | t.Second()/2)
	return date, tim
}

// normZip clamps the DOS times of every local and central header, and the
// Unix times of extended-timestamp extra fields, to sde.
func normZip(sde int64) func(b []byte) ([]byte, bool, error) {
	return func(b []byte) ([]byte, bool, error) {
		eocd := bytes.LastIndex(b, []byte("PK\x05\x06"))
		if !bytes.HasPrefix(b, []byte("PK\x03\x04")) || eocd < 0 || eocd+22 > len(b) {
			return nil, false, nil
		}
		out := bytes.Clone(b)
		changed := false
		date, tim := dosTime(time.Unix(sde, 0))
		limit := uint32(date)<<16 | uint32(tim)
		clampDOS := func(h []byte, off int) {
			d := binary.LittleEndian.Uint16(h[off+2:])
			t := binary.LittleEndian.Uint16(h[off:])
			if uint32(d)<<16|uint32(t) > limit {
				binary.LittleEndian.PutUint16(h[off:], tim)
				binary.LittleEndian.PutUint16(h[off+2:], date)
				changed = true
			}
		}
		clampExtra := func(extra []byte, central bool) {
			for len(extra) >= 4 {
				id := binary.LittleEndian.Uint16(extra)
				n := int(binary.LittleEndian.Uint16(extra[2:]))
				if 4+n > len(extra) {
					return
				}
				if id == 0x5455 && n >= 1 {
					data := extra[4 : 4+n]
					flags := data[0]
					off := 1
					for bit := 0; bit < 3 && off+4 <= len(data); bit++ {
						if flags&(1<<bit) == 0 {
							continue
						}
						if int64(binary.LittleEndian.Uint32(data[off:])) > sde {
							binary.LittleEndian.PutUint32(data[off:], uint32(sde))
							changed = true
						}
						off += 4
						if central {
							break // the central copy holds only the mtime
						}
					}
				}
				extra = extra[4+n:]
			}
		}
		n := int(binary.LittleEndian.Uint16(out[eocd+10:]))
		cdOff := int(binary.LittleEndian.Uint32(out[eocd+16:]))
		if cdOff == 0xffffffff || n == 0xffff {
			return nil, false, nil // zip64: left alone
		}
		pos := cdOff
		for i := 0; i < n; i++ {
			if pos+46 > len(out) || !bytes.Equal(out[pos:pos+4], []byte("PK\x01\x02")) {
				return nil, false, errors.New("corrupt zip central directory")
			}
			h := out[pos:]
			clampDOS(h, 12)
			nameLen := int(binary.LittleEndian.Uint16(h[28:]))
			extraLen := int(binary.LittleEndian.Uint16(h[30:]))
			commentLen := int(binary.LittleEndian.Uint16(h[32:]))
			if 46+nameLen+extraLen > len(h) {
				return nil, false, errors.New("corrupt zip central directory")
			}
			clampExtra(h[46+nameLen:46+nameLen+extraLen], true)
			local := int(binary.LittleEndian.Uint32(h[42:]))
			if local+30 > len(out) || !bytes.Equal(out[local:local+4], []byte("PK\x03\x04")) {
				return nil, false, errors.New("corrupt zip local header")
			}
			lh := out[local:]
			clampDOS(lh, 10)
			lName := int(binary.LittleEndian.Uint16(lh[26:]))
			lExtra := int(binary.LittleEndian.Uint16(lh[28:]))
			if 30+lName+lExtra <= len(lh) {
				clampExtra(lh[30+lName:30+lName+lExtra], false)
			}
			pos += 46 + nameLen + extraLen + commentLen
		}
		return out, changed, nil
	}
}

func fixZip(p string, sde int64) (bool, error) { return rewriteInPlace(p, normZip(sde)) }
