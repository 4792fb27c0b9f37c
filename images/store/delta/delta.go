package delta

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/klauspost/compress/zstd"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/backend"
)

// MaxFile is the largest file (old or new) deltas are made for: the
// encoder and the decoder hold both versions in memory.
const MaxFile = 512 << 20

// Level is the zstd level deltas are made with. klauspost/compress
// finds matches far back in a raw dictionary only at its best level
// (measured: a 14-byte edit in the middle of 3, 8 and 16 MiB of data
// costs 2.2 MB, 7.6 MB and 41 MB at the default level, 359 B, 919 B and
// 2 KB at the best), and a delta is made once per image pair.
const Level = zstd.SpeedBestCompression

// Encode returns the delta from old to new: zstd with old as a raw
// dictionary, the window wide enough to reach back into all of old.
func Encode(old, new []byte, level zstd.EncoderLevel) ([]byte, error) {
	if len(old) > MaxFile || len(new) > MaxFile {
		return nil, fmt.Errorf("delta of %d to %d bytes: larger than %d", len(old), len(new), MaxFile)
	}
	window := zstd.MaxWindowSize
	for window > zstd.MinWindowSize && window/2 >= len(old)+len(new) {
		window /= 2
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false), zstd.WithEncoderDictRaw(0, old), zstd.WithWindowSize(window))
	if err != nil {
		return nil, err
	}
	defer func() { _ = enc.Close() }() // used by EncodeAll only: nothing to flush
	return enc.EncodeAll(new, make([]byte, 0, len(new)/4+64)), nil
}

// Base is the old content a delta is applied to, with its sha256,
// computed once by NewBase: a caller that checks the old version it read
// (Sum) and then applies a delta to it (ApplyBase, or a store's delta
// through several locations) hashes it once.
type Base struct {
	data []byte
	sum  images.Digest
}

// NewBase hashes old.
func NewBase(old []byte) *Base { return &Base{data: old, sum: images.Sum(old)} }

// Sum is the sha256 of the content.
func (b *Base) Sum() images.Digest { return b.sum }

// Bytes is the content (not to be modified).
func (b *Base) Bytes() []byte { return b.data }

// Apply rebuilds content to, of size bytes, from old (which must
// hash to from) and the delta bytes; name labels errors. The output is
// bounded by size while it is decoded (a delta that would grow past it
// is refused with backend.ErrTooLarge) and verified against to.
func Apply(name string, delta, old []byte, from, to images.Digest, size int64) ([]byte, error) {
	return ApplyBase(name, delta, NewBase(old), from, to, size)
}

// ApplyBase is Apply with the old content hashed already.
func ApplyBase(name string, delta []byte, base *Base, from, to images.Digest, size int64) ([]byte, error) {
	if base.sum != from {
		return nil, fmt.Errorf("delta %s: the old content given does not hash to %s", name, from)
	}
	old := base.data
	if size < 0 || size > MaxFile {
		return nil, fmt.Errorf("delta %s: content of %d bytes, deltas are made for at most %d: %w", name, size, MaxFile, backend.ErrTooLarge)
	}
	if bytes.HasPrefix(delta, []byte(gzDeltaMagic)) {
		return applyGzDelta(name, delta, old, to, size)
	}
	out, err := decode(name, delta, old, size)
	if err != nil {
		return nil, err
	}
	if got := images.Sum(out); got != to {
		return nil, fmt.Errorf("delta %s: result hashes to %s: %w", name, got, backend.ErrCorrupt)
	}
	return out, nil
}

// decode decodes a zstd delta against old into at most size bytes.
func decode(name string, delta, old []byte, size int64) ([]byte, error) {
	// Encode's window is less than twice old and new together;
	// twice that is margin. The output stops at size (the capacity).
	window := uint64(zstd.MinWindowSize)
	for window < 4*uint64(int64(len(old))+size) {
		window *= 2
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderDictRaw(0, old),
		zstd.WithDecodeAllCapLimit(true), zstd.WithDecoderMaxMemory(window), zstd.WithDecoderMaxWindow(window))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	out, err := dec.DecodeAll(delta, make([]byte, 0, size))
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || int64(len(out)) > size {
		return nil, fmt.Errorf("delta %s: decodes to more than the %d bytes of its content: %w", name, size, backend.ErrTooLarge)
	}
	if err != nil {
		return nil, fmt.Errorf("delta %s: decoding: %v: %w", name, err, backend.ErrCorrupt)
	}
	return out, nil
}

// Deltas of gzip files. A compressed file that changes a little changes
// all over once compressed (a package's changelog.Debian.gz, its man
// pages), so a delta of the compressed bytes costs about the whole file.
// When both versions are gzip streams and gzip -n at some level turns the
// new version's decompressed content back into exactly its bytes, the
// delta is made on the decompressed contents instead: gzDeltaMagic, the
// level (one byte), the decompressed size of the new version (8 bytes,
// little endian), then the zstd delta of the decompressed new version
// with the decompressed old one as dictionary. Applying it runs gzip
// at that level over the decoded content; the result must hash to the
// wanted content like every delta's (a gzip that compresses otherwise
// only costs the fallback to chunks).

// gzDeltaMagic starts a delta made on decompressed gzip content.
const gzDeltaMagic = "ingot-gzdelta1\n"

// GzMaxRaw bounds the decompressed size of either version of a file
// with a gzip delta: applying one holds both, decompressed, besides what
// every delta holds (old, delta, new).
const GzMaxRaw = 4 << 20

// gzipLevels are the levels tried, most common first (dh_compress uses
// -9n).
var gzipLevels = []byte{9, 6}

// isGzip reports whether b starts like a gzip stream without a file
// name, comment or extra field (what gzip -n writes).
func isGzip(b []byte) bool {
	return len(b) >= 18 && b[0] == 0x1f && b[1] == 0x8b && b[2] == 8 && b[3] == 0
}

// gunzipBounded decompresses one gzip member of b, at most max bytes.
func gunzipBounded(b []byte, max int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	out, err := io.ReadAll(io.LimitReader(zr, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > max {
		return nil, fmt.Errorf("decompresses to more than %d bytes: %w", max, backend.ErrTooLarge)
	}
	return out, nil
}

// gzipAt compresses raw with gzip -n at level, at most max bytes out.
func gzipAt(raw []byte, level byte, max int64) ([]byte, error) {
	cmd := exec.Command("gzip", "-n", "-"+strconv.Itoa(int(level)), "-c")
	cmd.Stdin = bytes.NewReader(raw)
	out := &capped{max: max}
	cmd.Stdout = out
	if err := cmd.Run(); err != nil && !out.over {
		return nil, fmt.Errorf("gzip -%d: %w", level, err)
	}
	if out.over {
		return nil, fmt.Errorf("gzip -%d: more than %d bytes: %w", level, max, backend.ErrCorrupt)
	}
	return out.buf.Bytes(), nil
}

// capped is a buffer that takes at most max bytes, then fails.
type capped struct {
	buf  bytes.Buffer
	max  int64
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if int64(c.buf.Len()+len(p)) > c.max {
		c.over = true
		return 0, errors.New("output too large")
	}
	return c.buf.Write(p)
}

// encodeGzDelta returns the gzip delta from old to new, or nil when the
// two are not both gzip streams that gzip -n reproduces.
func encodeGzDelta(old, new []byte) []byte {
	if !isGzip(old) || !isGzip(new) {
		return nil
	}
	ro, err := gunzipBounded(old, GzMaxRaw)
	if err != nil {
		return nil
	}
	rn, err := gunzipBounded(new, GzMaxRaw)
	if err != nil {
		return nil
	}
	for _, l := range gzipLevels {
		again, err := gzipAt(rn, l, int64(len(new)))
		if err != nil || !bytes.Equal(again, new) {
			continue
		}
		z, err := encodeSmallest(ro, rn)
		if err != nil {
			return nil
		}
		d := append([]byte(gzDeltaMagic), l)
		d = binary.LittleEndian.AppendUint64(d, uint64(len(rn)))
		return append(d, z...)
	}
	return nil
}

// applyGzDelta rebuilds content to (size bytes) from a gzip delta.
func applyGzDelta(name string, delta, old []byte, to images.Digest, size int64) ([]byte, error) {
	h := len(gzDeltaMagic)
	if len(delta) < h+9 {
		return nil, fmt.Errorf("delta %s: a gzip delta's header is cut short: %w", name, backend.ErrCorrupt)
	}
	level := delta[h]
	raw := binary.LittleEndian.Uint64(delta[h+1:])
	if level < 1 || level > 9 {
		return nil, fmt.Errorf("delta %s: gzip level %d: %w", name, level, backend.ErrCorrupt)
	}
	if raw > GzMaxRaw {
		return nil, fmt.Errorf("delta %s: decompressed content of %d bytes, gzip deltas are made for at most %d: %w", name, raw, GzMaxRaw, backend.ErrTooLarge)
	}
	ro, err := gunzipBounded(old, GzMaxRaw)
	if err != nil {
		return nil, fmt.Errorf("delta %s: the old content is not a gzip stream this delta can use: %v: %w", name, err, backend.ErrCorrupt)
	}
	rn, err := decode(name, delta[h+9:], ro, int64(raw))
	if err != nil {
		return nil, err
	}
	if uint64(len(rn)) != raw {
		return nil, fmt.Errorf("delta %s: decodes to %d bytes, its header says %d: %w", name, len(rn), raw, backend.ErrCorrupt)
	}
	out, err := gzipAt(rn, level, size)
	if err != nil {
		return nil, fmt.Errorf("delta %s: %w", name, err)
	}
	if got := images.Sum(out); got != to {
		return nil, fmt.Errorf("delta %s: recompressed, the result hashes to %s: %w", name, got, backend.ErrCorrupt)
	}
	return out, nil
}

// Best returns the smallest delta from old to new it can make:
// the plain one (encodeSmallest) or the one of gzip files.
func Best(old, new []byte) ([]byte, error) {
	z, err := encodeSmallest(old, new)
	if err != nil {
		return nil, err
	}
	if g := encodeGzDelta(old, new); g != nil && len(g) < len(z) {
		return g, nil
	}
	return z, nil
}

// encodeSmallest is Encode, or, when the zstd program is installed
// where deltas are computed, zstd -19 --patch-from when that is smaller
// (its matcher at high levels finds about 15 % more than this package's
// best level in a changed binary: python3.11's update, 1,116,174 bytes
// against 944,826) and decodes here to new. Decoding never needs the
// program: its output is a zstd frame with old as raw dictionary.
func encodeSmallest(old, new []byte) ([]byte, error) {
	z, err := Encode(old, new, Level)
	if err != nil {
		return nil, err
	}
	if c := zstdPatchFrom(old, new); c != nil && len(c) < len(z) {
		if got, err := decode("zstd --patch-from", c, old, int64(len(new))); err == nil && bytes.Equal(got, new) {
			return c, nil
		}
	}
	return z, nil
}

// zstdPatchFrom runs zstd --patch-from; nil when it is not installed or fails.
func zstdPatchFrom(old, new []byte) []byte {
	if _, err := exec.LookPath("zstd"); err != nil {
		return nil
	}
	dir, err := os.MkdirTemp("", "ingot-delta")
	if err != nil {
		return nil
	}
	defer func() { _ = os.RemoveAll(dir) }() // a temporary folder of two copies: nothing is lost if it stays
	of, nf := filepath.Join(dir, "old"), filepath.Join(dir, "new")
	if os.WriteFile(of, old, 0o600) != nil || os.WriteFile(nf, new, 0o600) != nil {
		return nil
	}
	out, err := exec.Command("zstd", "-19", "--long=27", "-q", "-c", "--no-check", "--patch-from="+of, nf).Output()
	if err != nil {
		return nil
	}
	return out
}

// Delta packs. A host at image a going to b needs most of the pair's
// deltas, and most are small (a changelog's is a few hundred bytes): one
// request each costs more in headers and round trips than the delta
// itself, and a changed file without a delta costs a 404. So
// ComputeDeltas also writes the pair's small deltas (up to PackedMax)
// together into up to MaxPacks packs of at most PackMax bytes
// of bodies each, stored as deltas too (deltas/<a>/<name of pack k>, see
// deltaPackHandle). Pack 0 also lists the pair's deltas stored alone
// (larger ones), so a host that read the packs asks only for deltas that
// exist.
//
// A pack: packMagic, the number of entries (4 bytes, little
// endian), one byte that is 1 when pack k+1 exists, then per entry: from
// and to (32 bytes each), 1 if its body is in this pack (0: stored alone),
// the body's length (4 bytes); then the bodies in entry order.

const (
	packMagic = "ingot-deltapack1\n"
	// PackedMax is the largest delta put in a pack.
	PackedMax = 64 << 10
	// PackMax bounds the bodies of one pack.
	PackMax = 4 << 20
	// MaxPacks bounds the packs of one pair (and so what a host
	// holds of them: MaxPacks times PackLimit).
	MaxPacks = 4
	// maxPackEntries bounds the entries one pack lists.
	maxPackEntries = 16384
	packEntryLen   = 32 + 32 + 1 + 4
)

// PackLimit is the most bytes one pack may take.
const PackLimit = len(packMagic) + 5 + maxPackEntries*packEntryLen + PackMax

// Key names a delta by its two contents.
type Key struct{ From, To images.Digest }

// Pack is what one pack holds.
type Pack struct {
	Bodies map[Key][]byte // deltas in the pack
	Alone  []Key          // deltas stored alone (listed in pack 0)
	More   bool           // pack k+1 exists
}

type packEntry struct {
	key  Key
	body []byte // nil: stored alone
}

// EncodePacks lays the pair's deltas out in packs; nil when they
// are too many to list.
func EncodePacks(deltas map[Key][]byte) [][]byte {
	keys := slices.SortedFunc(maps.Keys(deltas), func(x, y Key) int {
		if c := bytes.Compare(x.To[:], y.To[:]); c != 0 {
			return c
		}
		return bytes.Compare(x.From[:], y.From[:])
	})
	var packs [][]packEntry
	var alone []packEntry
	var cur []packEntry
	size := 0
	for _, k := range keys {
		b := deltas[k]
		if len(b) > PackedMax || (len(packs) == MaxPacks-1 && size+len(b) > PackMax) {
			alone = append(alone, packEntry{key: k})
			continue
		}
		if size+len(b) > PackMax {
			packs = append(packs, cur)
			cur, size = nil, 0
		}
		cur = append(cur, packEntry{key: k, body: b})
		size += len(b)
	}
	if len(cur) > 0 || len(packs) == 0 {
		packs = append(packs, cur)
	}
	packs[0] = append(packs[0], alone...)
	var out [][]byte
	for i, p := range packs {
		if len(p) > maxPackEntries {
			return nil
		}
		b := []byte(packMagic)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		more := byte(0)
		if i < len(packs)-1 {
			more = 1
		}
		b = append(b, more)
		for _, e := range p {
			b = append(b, e.key.From[:]...)
			b = append(b, e.key.To[:]...)
			in := byte(0)
			if e.body != nil {
				in = 1
			}
			b = append(b, in)
			b = binary.LittleEndian.AppendUint32(b, uint32(len(e.body)))
		}
		for _, e := range p {
			b = append(b, e.body...)
		}
		out = append(out, b)
	}
	return out
}

// ParsePack reads one pack; the bodies are slices of b.
func ParsePack(b []byte) (*Pack, error) {
	bad := func(what string) error { return fmt.Errorf("delta pack: %s: %w", what, backend.ErrCorrupt) }
	h := len(packMagic)
	if len(b) < h+5 || string(b[:h]) != packMagic {
		return nil, bad("not a delta pack")
	}
	n := int(binary.LittleEndian.Uint32(b[h:]))
	if n > maxPackEntries {
		return nil, bad(fmt.Sprintf("%d entries, the most is %d", n, maxPackEntries))
	}
	if b[h+4] > 1 {
		return nil, bad("bad flag")
	}
	p := &Pack{Bodies: map[Key][]byte{}, More: b[h+4] == 1}
	off := h + 5
	if len(b)-off < n*packEntryLen {
		return nil, bad("entries cut short")
	}
	body := off + n*packEntryLen
	for i := 0; i < n; i++ {
		e := b[off+i*packEntryLen:]
		var k Key
		copy(k.From[:], e[:32])
		copy(k.To[:], e[32:64])
		l := int(binary.LittleEndian.Uint32(e[65:]))
		switch e[64] {
		case 0:
			if l != 0 {
				return nil, bad("a delta stored alone with a body")
			}
			p.Alone = append(p.Alone, k)
		case 1:
			if l > PackedMax || l > len(b)-body {
				return nil, bad("a body past the end or larger than packed deltas may be")
			}
			p.Bodies[k] = b[body : body+l : body+l]
			body += l
		default:
			return nil, bad("bad entry flag")
		}
	}
	if body != len(b) {
		return nil, bad("bytes after the last body")
	}
	return p, nil
}
