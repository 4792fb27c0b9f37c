package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/backend"
)

// Sub-file deltas. When image B follows image A, most changed files differ
// from A's version at the same path in a few places; a delta is B's
// version compressed by zstd with A's version as a raw dictionary, stored
// under deltas/<from>/<to> (the two content hashes). It is computed once
// per image pair (ComputeDeltas) and fetched by every host that holds
// the old version; hosts that do not fall back to chunks. A delta is
// verified where it is used: decoded against bytes that hash to "from",
// the result must hash to "to".

// MaxDeltaFile is the largest file (old or new) deltas are made for: the
// encoder and the decoder hold both versions in memory.
const MaxDeltaFile = 512 << 20

// DeltaLevel is the zstd level deltas are made with. klauspost/compress
// finds matches far back in a raw dictionary only at its best level
// (measured: a 14-byte edit in the middle of 3, 8 and 16 MiB of data
// costs 2.2 MB, 7.6 MB and 41 MB at the default level, 359 B, 919 B and
// 2 KB at the best), and a delta is made once per image pair.
const DeltaLevel = zstd.SpeedBestCompression

// deltaKeep is how much smaller than fetching the chunks a host lacks a
// delta must be to be stored (in tenths).
const deltaKeep = 9

// DeltaHandle is the handle of the delta from content from to content to.
func DeltaHandle(from, to images.Digest) Handle {
	return Handle{Kind: KindDelta, Name: from.String() + "/" + to.String()}
}

// EncodeDelta returns the delta from old to new: zstd with old as a raw
// dictionary, the window wide enough to reach back into all of old.
func EncodeDelta(old, new []byte, level zstd.EncoderLevel) ([]byte, error) {
	if len(old) > MaxDeltaFile || len(new) > MaxDeltaFile {
		return nil, fmt.Errorf("delta of %d to %d bytes: larger than %d", len(old), len(new), MaxDeltaFile)
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
	defer enc.Close()
	return enc.EncodeAll(new, make([]byte, 0, len(new)/4+64)), nil
}

// ApplyDelta rebuilds content to, of size bytes, from old (which must
// hash to from) and the delta bytes; name labels errors. The output is
// bounded by size while it is decoded (a delta that would grow past it
// is refused with ErrTooLarge) and verified against to.
func ApplyDelta(name string, delta, old []byte, from, to images.Digest, size int64) ([]byte, error) {
	if images.Sum(old) != from {
		return nil, fmt.Errorf("delta %s: the old content given does not hash to %s", name, from)
	}
	if size < 0 || size > MaxDeltaFile {
		return nil, fmt.Errorf("delta %s: content of %d bytes, deltas are made for at most %d: %w", name, size, MaxDeltaFile, ErrTooLarge)
	}
	if bytes.HasPrefix(delta, []byte(gzDeltaMagic)) {
		return applyGzDelta(name, delta, old, to, size)
	}
	out, err := decodeDelta(name, delta, old, size)
	if err != nil {
		return nil, err
	}
	if got := images.Sum(out); got != to {
		return nil, fmt.Errorf("delta %s: result hashes to %s: %w", name, got, ErrCorrupt)
	}
	return out, nil
}

// decodeDelta decodes a zstd delta against old into at most size bytes.
func decodeDelta(name string, delta, old []byte, size int64) ([]byte, error) {
	// EncodeDelta's window is less than twice old and new together;
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
		return nil, fmt.Errorf("delta %s: decodes to more than the %d bytes of its content: %w", name, size, ErrTooLarge)
	}
	if err != nil {
		return nil, fmt.Errorf("delta %s: decoding: %v: %w", name, err, ErrCorrupt)
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

// GzDeltaMaxRaw bounds the decompressed size of either version of a file
// with a gzip delta: applying one holds both, decompressed, besides what
// every delta holds (old, delta, new).
const GzDeltaMaxRaw = 4 << 20

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
		return nil, fmt.Errorf("decompresses to more than %d bytes: %w", max, ErrTooLarge)
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
		return nil, fmt.Errorf("gzip -%d: more than %d bytes: %w", level, max, ErrCorrupt)
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
	ro, err := gunzipBounded(old, GzDeltaMaxRaw)
	if err != nil {
		return nil
	}
	rn, err := gunzipBounded(new, GzDeltaMaxRaw)
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
		return nil, fmt.Errorf("delta %s: a gzip delta's header is cut short: %w", name, ErrCorrupt)
	}
	level := delta[h]
	raw := binary.LittleEndian.Uint64(delta[h+1:])
	if level < 1 || level > 9 {
		return nil, fmt.Errorf("delta %s: gzip level %d: %w", name, level, ErrCorrupt)
	}
	if raw > GzDeltaMaxRaw {
		return nil, fmt.Errorf("delta %s: decompressed content of %d bytes, gzip deltas are made for at most %d: %w", name, raw, GzDeltaMaxRaw, ErrTooLarge)
	}
	ro, err := gunzipBounded(old, GzDeltaMaxRaw)
	if err != nil {
		return nil, fmt.Errorf("delta %s: the old content is not a gzip stream this delta can use: %v: %w", name, err, ErrCorrupt)
	}
	rn, err := decodeDelta(name, delta[h+9:], ro, int64(raw))
	if err != nil {
		return nil, err
	}
	if uint64(len(rn)) != raw {
		return nil, fmt.Errorf("delta %s: decodes to %d bytes, its header says %d: %w", name, len(rn), raw, ErrCorrupt)
	}
	out, err := gzipAt(rn, level, size)
	if err != nil {
		return nil, fmt.Errorf("delta %s: %w", name, err)
	}
	if got := images.Sum(out); got != to {
		return nil, fmt.Errorf("delta %s: recompressed, the result hashes to %s: %w", name, got, ErrCorrupt)
	}
	return out, nil
}

// Delta returns content to (of size bytes), rebuilt from old (the content
// hashing to from) and the stored delta; an error wrapping ErrNotFound
// when the store has no such delta, ErrCorrupt when it does not rebuild
// to, ErrTooLarge when the delta is longer than to can need.
func (s *Store) Delta(ctx context.Context, from, to images.Digest, old []byte, size int64) ([]byte, error) {
	h := DeltaHandle(from, to)
	var out []byte
	_, err := backend.GetChecked(ctx, s.b, h, compressedLimit(size), func(raw []byte) (err error) {
		out, err = ApplyDelta(h.Path()+" from "+s.b.Location(), raw, old, from, to, size)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// HasDelta reports whether the delta from → to is stored.
func (s *Store) HasDelta(ctx context.Context, from, to images.Digest) (bool, error) {
	return s.b.Has(ctx, DeltaHandle(from, to))
}

// bestDelta returns the smallest delta from old to new it can make:
// the plain one (encodeSmallest) or the one of gzip files.
func bestDelta(old, new []byte) ([]byte, error) {
	z, err := encodeSmallest(old, new)
	if err != nil {
		return nil, err
	}
	if g := encodeGzDelta(old, new); g != nil && len(g) < len(z) {
		return g, nil
	}
	return z, nil
}

// encodeSmallest is EncodeDelta, or, when the zstd program is installed
// where deltas are computed, zstd -19 --patch-from when that is smaller
// (its matcher at high levels finds about 15 % more than this package's
// best level in a changed binary: python3.11's update, 1,116,174 bytes
// against 944,826) and decodes here to new. Decoding never needs the
// program: its output is a zstd frame with old as raw dictionary.
func encodeSmallest(old, new []byte) ([]byte, error) {
	z, err := EncodeDelta(old, new, DeltaLevel)
	if err != nil {
		return nil, err
	}
	if c := zstdPatchFrom(old, new); c != nil && len(c) < len(z) {
		if got, err := decodeDelta("zstd --patch-from", c, old, int64(len(new))); err == nil && bytes.Equal(got, new) {
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
	defer os.RemoveAll(dir)
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

// PutDelta stores the delta from old to new and returns its size.
func (s *Store) PutDelta(ctx context.Context, old, new []byte) (int64, error) {
	z, err := bestDelta(old, new)
	if err != nil {
		return 0, err
	}
	return int64(len(z)), s.b.Put(ctx, DeltaHandle(images.Sum(old), images.Sum(new)), z, true)
}

// DeltaStats is what ComputeDeltas did.
type DeltaStats struct {
	Files      int   `json:"files"`       // file pairs considered (changed content at one path)
	Deltas     int   `json:"deltas"`      // deltas stored (or found stored)
	DeltaBytes int64 `json:"delta_bytes"` // their total size
	// ChunkBytes is what the same files cost a host at A in chunks it
	// lacks (compressed): what the deltas are measured against.
	ChunkBytes int64 `json:"chunk_bytes"`
	// WholeBytes is what the same files cost as every chunk (compressed).
	WholeBytes int64 `json:"whole_bytes"`
}

// ComputeDeltas stores, for every path that is a non-empty regular file
// in both image a and image b with different content, the delta from a's
// version to b's, when it is smaller than the chunks of b's version that
// a's version does not hold. It is done once per image pair; agents at a
// then fetch deltas. Deltas already stored are kept and counted.
func (s *Store) ComputeDeltas(ctx context.Context, a, b images.Digest) (DeltaStats, error) {
	var st DeltaStats
	ma, err := s.Manifest(ctx, a)
	if err != nil {
		return st, err
	}
	mb, err := s.Manifest(ctx, b)
	if err != nil {
		return st, err
	}
	type pair struct{ from, to *images.Entry }
	var pairs []pair
	seen := map[[2]images.Digest]bool{}
	for i := range mb.Entries {
		eb := &mb.Entries[i]
		if eb.Type != images.TypeFile || eb.Size == 0 || eb.Size > MaxDeltaFile {
			continue
		}
		ea := ma.Lookup(eb.Path)
		if ea != nil {
			ea = ma.Resolve(ea)
		}
		if ea == nil || ea.Type != images.TypeFile || ea.SHA256 == eb.SHA256 || ea.Size == 0 || ea.Size > MaxDeltaFile {
			continue
		}
		k := [2]images.Digest{ea.SHA256, eb.SHA256}
		if !seen[k] {
			seen[k] = true
			pairs = append(pairs, pair{ea, eb})
		}
	}
	var (
		mu     sync.Mutex
		first  error
		wg     sync.WaitGroup
		next   = make(chan pair)
		bodies = map[DeltaKey][]byte{}
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range max(1, min(s.workers, runtime.GOMAXPROCS(0))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				ds, body, err := s.computeDelta(ctx, p.from, p.to)
				mu.Lock()
				if body != nil {
					bodies[DeltaKey{p.from.SHA256, p.to.SHA256}] = body
				}
				if err != nil && first == nil {
					first = fmt.Errorf("delta for %s: %w", images.Escape(p.to.Path), err)
					cancel()
				}
				st.Files++
				st.Deltas += ds.Deltas
				st.DeltaBytes += ds.DeltaBytes
				st.ChunkBytes += ds.ChunkBytes
				st.WholeBytes += ds.WholeBytes
				mu.Unlock()
			}
		}()
	}
	for _, p := range pairs {
		if ctx.Err() != nil {
			break
		}
		next <- p
	}
	close(next)
	wg.Wait()
	if first != nil {
		return st, first
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if err := s.putManifestDelta(ctx, a, b); err != nil {
		return st, err
	}
	return st, s.putDeltaPacks(ctx, a, b, bodies)
}

// ManifestDeltaLimit is the largest manifest a host rebuilds from a
// delta against a manifest of old bytes: a larger one (an image that grew
// more than that) is fetched whole.
func ManifestDeltaLimit(old int) int64 { return min(MaxManifest, 2*int64(old)+1<<20) }

// putManifestDelta stores the delta from image a's manifest to b's (a
// content delta: a manifest's digest is the hash of its bytes), so that a
// host that keeps a's manifest fetches a few lines' worth instead of the
// whole of b's: for the Debian update, most of its 11,700 lines are the
// same in both.
func (s *Store) putManifestDelta(ctx context.Context, a, b images.Digest) error {
	old, err := s.ManifestBytes(ctx, a)
	if err != nil {
		return err
	}
	nw, err := s.ManifestBytes(ctx, b)
	if err != nil {
		return err
	}
	if int64(len(nw)) > ManifestDeltaLimit(len(old)) {
		return nil
	}
	z, err := EncodeDelta(old, nw, DeltaLevel)
	if err != nil {
		return err
	}
	return s.b.Put(ctx, DeltaHandle(a, b), z, true)
}

// putDeltaPacks stores the packs of the pair's deltas.
func (s *Store) putDeltaPacks(ctx context.Context, a, b images.Digest, deltas map[DeltaKey][]byte) error {
	for k, p := range encodeDeltaPacks(deltas) {
		if err := s.b.Put(ctx, deltaPackHandle(a, b, k), p, true); err != nil {
			return fmt.Errorf("delta pack %d of %s → %s: %w", k, a, b, err)
		}
	}
	return nil
}

// computeDelta stores one delta if it pays; DeltaBytes is what a host at
// from then fetches for this file (the delta or the missing chunks).
func (s *Store) computeDelta(ctx context.Context, from, to *images.Entry) (DeltaStats, []byte, error) {
	var st DeltaStats
	oldChunks, err := s.FileChunksOf(ctx, from.SHA256, from.Size)
	if err != nil {
		return st, nil, err
	}
	newChunks, err := s.FileChunksOf(ctx, to.SHA256, to.Size)
	if err != nil {
		return st, nil, err
	}
	have := map[images.Digest]bool{}
	for _, c := range oldChunks {
		have[c.ID] = true
	}
	for _, c := range newChunks {
		n, err := s.storedSize(ctx, c.ID)
		if err != nil {
			return st, nil, err
		}
		st.WholeBytes += n
		if !have[c.ID] {
			st.ChunkBytes += n
			have[c.ID] = true
		}
	}
	if ok, err := s.HasDelta(ctx, from.SHA256, to.SHA256); err != nil {
		return st, nil, err
	} else if ok {
		raw, err := s.b.Get(ctx, DeltaHandle(from.SHA256, to.SHA256), compressedLimit(to.Size))
		if err != nil {
			return st, nil, err
		}
		st.Deltas, st.DeltaBytes = 1, int64(len(raw))
		return st, raw, nil
	}
	old, err := s.contentBytes(ctx, from.SHA256)
	if err != nil {
		return st, nil, err
	}
	nw, err := s.contentBytes(ctx, to.SHA256)
	if err != nil {
		return st, nil, err
	}
	z, err := bestDelta(old, nw)
	if err != nil {
		return st, nil, err
	}
	if int64(len(z))*10 >= st.ChunkBytes*deltaKeep {
		st.DeltaBytes = st.ChunkBytes
		return st, nil, nil
	}
	if err := s.b.Put(ctx, DeltaHandle(from.SHA256, to.SHA256), z, true); err != nil {
		return st, nil, err
	}
	st.Deltas, st.DeltaBytes = 1, int64(len(z))
	return st, z, nil
}

// contentBytes returns the whole verified content of sha.
func (s *Store) contentBytes(ctx context.Context, sha images.Digest) ([]byte, error) {
	r, err := s.OpenFile(ctx, sha)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// verifyDelta checks a stored delta: its old content must be in the store
// and the delta must rebuild its new content.
func (s *Store) verifyDelta(ctx context.Context, name string) error {
	from, err := images.ParseDigest(name[:64])
	if err != nil {
		return err
	}
	to, err := images.ParseDigest(name[65:])
	if err != nil {
		return err
	}
	if ok, err := s.b.Has(ctx, DigestHandle(KindImage, from)); err != nil {
		return err
	} else if ok {
		return s.verifyDeltaPack(ctx, name)
	}
	old, err := s.contentBytes(ctx, from)
	if err != nil {
		return fmt.Errorf("its old content: %w", err)
	}
	_, err = s.Delta(ctx, from, to, old, MaxDeltaFile)
	return err
}

// Delta packs. A host at image a going to b needs most of the pair's
// deltas, and most are small (a changelog's is a few hundred bytes): one
// request each costs more in headers and round trips than the delta
// itself, and a changed file without a delta costs a 404. So
// ComputeDeltas also writes the pair's small deltas (up to PackedDeltaMax)
// together into up to MaxDeltaPacks packs of at most DeltaPackMax bytes
// of bodies each, stored as deltas too (deltas/<a>/<name of pack k>, see
// deltaPackHandle). Pack 0 also lists the pair's deltas stored alone
// (larger ones), so a host that read the packs asks only for deltas that
// exist.
//
// A pack: deltaPackMagic, the number of entries (4 bytes, little
// endian), one byte that is 1 when pack k+1 exists, then per entry: from
// and to (32 bytes each), 1 if its body is in this pack (0: stored alone),
// the body's length (4 bytes); then the bodies in entry order.

const (
	deltaPackMagic = "ingot-deltapack1\n"
	// PackedDeltaMax is the largest delta put in a pack.
	PackedDeltaMax = 64 << 10
	// DeltaPackMax bounds the bodies of one pack.
	DeltaPackMax = 4 << 20
	// MaxDeltaPacks bounds the packs of one pair (and so what a host
	// holds of them: MaxDeltaPacks times deltaPackLimit).
	MaxDeltaPacks = 4
	// maxDeltaPackEntries bounds the entries one pack lists.
	maxDeltaPackEntries = 16384
	deltaPackEntryLen   = 32 + 32 + 1 + 4
)

// deltaPackLimit is the most bytes one pack may take.
const deltaPackLimit = len(deltaPackMagic) + 5 + maxDeltaPackEntries*deltaPackEntryLen + DeltaPackMax

// deltaPackHandle names pack k of the deltas from image a to image b: a
// delta's handle whose second part no content hash can take by chance.
func deltaPackHandle(a, b images.Digest, k int) Handle {
	return Handle{Kind: KindDelta, Name: a.String() + "/" + images.Sum([]byte(fmt.Sprintf("ingot delta pack\x00%s\x00%d", b, k))).String()}
}

// DeltaKey names a delta by its two contents.
type DeltaKey struct{ From, To images.Digest }

// DeltaPack is what one pack holds.
type DeltaPack struct {
	Bodies map[DeltaKey][]byte // deltas in the pack
	Alone  []DeltaKey          // deltas stored alone (listed in pack 0)
	More   bool                // pack k+1 exists
}

type deltaPackEntry struct {
	key  DeltaKey
	body []byte // nil: stored alone
}

// encodeDeltaPacks lays the pair's deltas out in packs; nil when they
// are too many to list.
func encodeDeltaPacks(deltas map[DeltaKey][]byte) [][]byte {
	keys := slices.SortedFunc(maps.Keys(deltas), func(x, y DeltaKey) int {
		if c := bytes.Compare(x.To[:], y.To[:]); c != 0 {
			return c
		}
		return bytes.Compare(x.From[:], y.From[:])
	})
	var packs [][]deltaPackEntry
	var alone []deltaPackEntry
	var cur []deltaPackEntry
	size := 0
	for _, k := range keys {
		b := deltas[k]
		if len(b) > PackedDeltaMax || (len(packs) == MaxDeltaPacks-1 && size+len(b) > DeltaPackMax) {
			alone = append(alone, deltaPackEntry{key: k})
			continue
		}
		if size+len(b) > DeltaPackMax {
			packs = append(packs, cur)
			cur, size = nil, 0
		}
		cur = append(cur, deltaPackEntry{key: k, body: b})
		size += len(b)
	}
	if len(cur) > 0 || len(packs) == 0 {
		packs = append(packs, cur)
	}
	packs[0] = append(packs[0], alone...)
	var out [][]byte
	for i, p := range packs {
		if len(p) > maxDeltaPackEntries {
			return nil
		}
		b := []byte(deltaPackMagic)
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

// parseDeltaPack reads one pack; the bodies are slices of b.
func parseDeltaPack(b []byte) (*DeltaPack, error) {
	bad := func(what string) error { return fmt.Errorf("delta pack: %s: %w", what, ErrCorrupt) }
	h := len(deltaPackMagic)
	if len(b) < h+5 || string(b[:h]) != deltaPackMagic {
		return nil, bad("not a delta pack")
	}
	n := int(binary.LittleEndian.Uint32(b[h:]))
	if n > maxDeltaPackEntries {
		return nil, bad(fmt.Sprintf("%d entries, the most is %d", n, maxDeltaPackEntries))
	}
	if b[h+4] > 1 {
		return nil, bad("bad flag")
	}
	p := &DeltaPack{Bodies: map[DeltaKey][]byte{}, More: b[h+4] == 1}
	off := h + 5
	if len(b)-off < n*deltaPackEntryLen {
		return nil, bad("entries cut short")
	}
	body := off + n*deltaPackEntryLen
	for i := 0; i < n; i++ {
		e := b[off+i*deltaPackEntryLen:]
		var k DeltaKey
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
			if l > PackedDeltaMax || l > len(b)-body {
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

// DeltaPack returns pack k of the deltas from image a to image b (an
// error wrapping ErrNotFound when there is none).
func (s *Store) DeltaPack(ctx context.Context, a, b images.Digest, k int) (*DeltaPack, error) {
	if k < 0 || k >= MaxDeltaPacks {
		return nil, fmt.Errorf("delta pack %d: %w", k, ErrNotFound)
	}
	h := deltaPackHandle(a, b, k)
	var p *DeltaPack
	_, err := backend.GetChecked(ctx, s.b, h, int64(deltaPackLimit), func(raw []byte) (err error) {
		if p, err = parseDeltaPack(raw); err != nil {
			return fmt.Errorf("%s from %s: %w", h.Path(), s.b.Location(), err)
		}
		if k == MaxDeltaPacks-1 && p.More {
			return fmt.Errorf("%s from %s: more than %d packs: %w", h.Path(), s.b.Location(), MaxDeltaPacks, ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// verifyDeltaPack checks a delta pack (named by an image and a hash):
// every delta it holds must rebuild its new content from its old.
func (s *Store) verifyDeltaPack(ctx context.Context, name string) error {
	raw, err := s.b.Get(ctx, Handle{Kind: KindDelta, Name: name}, int64(deltaPackLimit))
	if err != nil {
		return err
	}
	p, err := parseDeltaPack(raw)
	if err != nil {
		return err
	}
	for _, k := range slices.SortedFunc(maps.Keys(p.Bodies), func(x, y DeltaKey) int { return bytes.Compare(x.To[:], y.To[:]) }) {
		old, err := s.contentBytes(ctx, k.From)
		if err != nil {
			return fmt.Errorf("the old content of a packed delta: %w", err)
		}
		if _, err := ApplyDelta(name+": "+k.To.String(), p.Bodies[k], old, k.From, k.To, MaxDeltaFile); err != nil {
			return err
		}
	}
	return nil
}
