package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/images/store/chunks"
	"github.com/ingotfleet/ingot/images/store/pack"
)

// emptySHA is the content hash of an empty file, which needs no object.
var emptySHA = images.Sum(nil)

// Store is a content-addressed image store over a Backend. It is safe for
// concurrent use.
type Store struct {
	b       Backend
	level   zstd.EncoderLevel
	workers int

	encOnce    sync.Once
	enc        *zstd.Encoder
	decSmall   *zstd.Decoder // chunks: output capped at MaxChunk
	packs      *pack.Set     // where packed objects are (layout v2)
	bufs       sync.Pool     // *[]byte of MaxChunk capacity: chunks queued for writing
	encBufs    sync.Pool     // *[]byte: compressed objects being written
	frameBufs  sync.Pool     // *[]byte of pack.MaxFrame capacity: frames being gathered
	zFrameBufs sync.Pool     // *[]byte: frames being compressed
}

// Option configures a Store.
type Option func(*Store)

// WithLevel sets the zstd level objects are written with.
func WithLevel(l zstd.EncoderLevel) Option { return func(s *Store) { s.level = l } }

// WithWorkers sets how many objects are compressed and written (or read
// and verified) at once. The default is two per CPU: creating a file
// blocks in the filesystem more than it computes, so more writers than
// CPUs keep the CPUs busy.
func WithWorkers(n int) Option {
	return func(s *Store) {
		if n > 0 {
			s.workers = n
		}
	}
}

// DefaultLevel is the zstd level of new objects, chosen by measurement
// (see docs/BENCHMARKS.md).
const DefaultLevel = zstd.SpeedDefault

// New returns a Store over b.
func New(b Backend, opts ...Option) *Store {
	s := &Store{b: b, level: DefaultLevel, workers: 2 * runtime.GOMAXPROCS(0)}
	for _, o := range opts {
		o(s)
	}
	var err error
	s.decSmall, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(s.workers), zstd.WithDecodeAllCapLimit(true),
		zstd.WithDecoderMaxWindow(MaxChunk))
	if err != nil {
		panic(err)
	}
	s.packs = pack.NewSet(b, s.workers)
	s.bufs.New = func() any { b := make([]byte, 0, MaxChunk); return &b }
	s.encBufs.New = func() any { b := make([]byte, 0, MaxChunk+MaxChunk/8); return &b }
	s.frameBufs.New = func() any { b := make([]byte, 0, pack.MaxFrame); return &b }
	s.zFrameBufs.New = func() any { b := make([]byte, 0, compressedLimit(pack.MaxFrame)); return &b }
	return s
}

// Open opens (creating if needed) the store in directory dir.
func Open(dir string, opts ...Option) (*Store, error) {
	b, err := backend.OpenLocal(dir)
	if err != nil {
		return nil, err
	}
	return New(b, opts...), nil
}

// OpenHTTP opens a read-only store served over HTTP at base URLs (mirrors
// of the same store, tried in order).
func OpenHTTP(urls ...string) (*Store, error) {
	b, err := backend.HTTPMirrors(urls)
	if err != nil {
		return nil, err
	}
	return New(b), nil
}

// Backend is the store's backend.
func (s *Store) Backend() Backend { return s.b }

// layout is the backend's layout version: what new objects are written
// as. A backend that does not say (HTTP, read-only) is read either way.
func (s *Store) layout() int { return backend.LayoutOf(s.b) }

// WillRead tells the store that objects of image d, whose manifest m the
// reader has from elsewhere (kept from an earlier sync, or rebuilt from a
// manifest delta), are about to be read: in layout v2 its image pack
// index is then read (bounded by m) before the first of them.
func (s *Store) WillRead(d images.Digest, m *images.Manifest) {
	s.packs.NoteImage(d, min(pack.MaxIndex, pack.IndexLimit(m)))
}

// Close releases the compressors.
func (s *Store) Close() error {
	s.decSmall.Close()
	s.packs.Close()
	if s.enc != nil {
		_ = s.enc.Close() // used by EncodeAll only: nothing to flush
	}
	return nil
}

func (s *Store) encoder() *zstd.Encoder {
	s.encOnce.Do(func() {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(s.level), zstd.WithEncoderConcurrency(s.workers),
			zstd.WithEncoderCRC(false), zstd.WithZeroFrames(true))
		if err != nil {
			panic(err)
		}
		s.enc = enc
	})
	return s.enc
}

// get reads the file of h and decompresses it, at most max bytes: the
// compressed body is bounded while it is read, the output while it is
// decompressed.
func (s *Store) get(ctx context.Context, h Handle, max int64) ([]byte, error) {
	return s.getVerified(ctx, h, max, nil)
}

// getVerified is get, whose decompressed bytes must also pass verify
// (when not nil): bytes that do not are a failed read, which a Failover
// backend takes from its next location.
func (s *Store) getVerified(ctx context.Context, h Handle, max int64, verify func(data []byte) error) ([]byte, error) {
	var data []byte
	_, err := backend.GetChecked(ctx, s.b, h, compressedLimit(max), func(raw []byte) (err error) {
		data, err = s.decode(h, raw, max)
		if err == nil && verify != nil {
			err = verify(data)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return data, nil
}

// decode decompresses raw, the file of h, into at most max bytes.
func (s *Store) decode(h Handle, raw []byte, max int64) ([]byte, error) {
	var data []byte
	var err error
	if max <= MaxChunk {
		// Size the output by the frame header (every object is written
		// with its content size); the decoder stops at that capacity.
		size := max
		var fh zstd.Header
		if fh.Decode(raw) == nil && fh.HasFCS {
			if fh.FrameContentSize > uint64(max) {
				return nil, tooLarge(h, s.b.Location(), fmt.Sprintf("claims %d bytes,", fh.FrameContentSize), max)
			}
			size = int64(fh.FrameContentSize)
		}
		data, err = s.decSmall.DecodeAll(raw, make([]byte, 0, size))
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			err = errDecodedTooLarge
		}
	} else {
		data, err = decodeBounded(raw, max)
	}
	if errors.Is(err, errDecodedTooLarge) || int64(len(data)) > max {
		return nil, tooLarge(h, s.b.Location(), "decompresses to", max)
	}
	if err != nil {
		return nil, fmt.Errorf("%s from %s: decompressing: %v: %w", h, s.b.Location(), err, ErrCorrupt)
	}
	return data, nil
}

// getObject returns the object d, verified: its bytes hash to d. It is
// read from its pack when the store knows one, else from its own file
// (layout v1, and manifests), else from a pack the store learns of by
// listing its pack indexes (a local store written since).
func (s *Store) getObject(ctx context.Context, d images.Digest, max int64) ([]byte, error) {
	// A manifest (the only object larger than a chunk) is loose: it is
	// read before the image's pack index, which is read only for chunks.
	if max <= MaxChunk {
		if l, ok, err := s.packs.Place(ctx, d); err != nil {
			return nil, err
		} else if ok {
			return s.packs.Read(ctx, d, l, max)
		}
	}
	h := DigestHandle(KindObject, d)
	data, err := s.getVerified(ctx, h, max, func(data []byte) error {
		if got := images.Sum(data); got != d {
			return fmt.Errorf("object %s from %s: bytes hash to %s: %w", d, s.b.Location(), got, ErrCorrupt)
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		if l, ok := s.packs.Lookup(d); ok {
			return s.packs.Read(ctx, d, l, max)
		}
		if read, lerr := s.packs.LoadIndexes(ctx); lerr != nil {
			return nil, lerr
		} else if read {
			if l, ok := s.packs.Lookup(d); ok {
				return s.packs.Read(ctx, d, l, max)
			}
		}
	}
	return data, err
}

func (s *Store) put(ctx context.Context, h Handle, data []byte, durable bool) error {
	// Backends do not keep the slice past Put, so the compressed bytes
	// go to a pooled buffer: an import compresses thousands of objects.
	bp := s.encBufs.Get().(*[]byte)
	z := s.encoder().EncodeAll(data, (*bp)[:0])
	err := s.b.Put(ctx, h, z, durable)
	if cap(z) <= 2*MaxChunk {
		*bp = z[:0]
		s.encBufs.Put(bp)
	}
	return err
}

// GetChunk returns the bytes of chunk id, verified against id.
func (s *Store) GetChunk(ctx context.Context, id images.Digest) ([]byte, error) {
	return s.getObject(ctx, id, MaxChunk)
}

// HasContent reports whether the content of a file with hash sha is in
// the store (its list, or its single chunk).
func (s *Store) HasContent(ctx context.Context, sha images.Digest) (bool, error) {
	if sha == emptySHA {
		return true, nil
	}
	ok, err := s.b.Has(ctx, DigestHandle(KindList, sha))
	if err != nil || ok {
		return ok, err
	}
	return s.packs.Has(ctx, sha)
}

// FileChunks returns the chunks of the file whose content hashes to sha.
// The list itself cannot be checked against sha until the chunks are put
// together: whoever assembles the file checks its hash (OpenFile does).
// Not knowing the file's size, it reads a list of at most 256 MiB; a
// reader that knows it calls FileChunksOf.
func (s *Store) FileChunks(ctx context.Context, sha images.Digest) ([]Chunk, error) {
	return s.fileChunks(ctx, sha, maxListSize)
}

// FileChunksOf is FileChunks for content of size bytes: the list read is
// bounded by what that size can need (ListLimit).
func (s *Store) FileChunksOf(ctx context.Context, sha images.Digest, size int64) ([]Chunk, error) {
	return s.fileChunks(ctx, sha, ListLimit(size))
}

func (s *Store) fileChunks(ctx context.Context, sha images.Digest, max int64) ([]Chunk, error) {
	if sha == emptySHA {
		return nil, nil
	}
	h := DigestHandle(KindList, sha)
	var list []Chunk
	_, err := s.getVerified(ctx, h, max, func(data []byte) (err error) {
		list, err = chunks.ParseChunkList(h.Path()+" from "+s.b.Location(), data)
		return err
	})
	if err == nil {
		return list, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	// A single-chunk file is that chunk.
	c, err := s.GetChunk(ctx, sha)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("content %s: not in store %s: %w", sha, s.b.Location(), ErrNotFound)
		}
		return nil, err
	}
	return []Chunk{{ID: sha, Size: int64(len(c))}}, nil
}

// OpenFile returns the content of the file whose content hashes to sha.
// Every chunk is verified as it is read, and the whole at the end: a
// mismatch is an error from Read, never data.
func (s *Store) OpenFile(ctx context.Context, sha images.Digest) (io.ReadCloser, error) {
	chunks, err := s.FileChunks(ctx, sha)
	if err != nil {
		return nil, err
	}
	return &fileReader{ctx: ctx, s: s, sha: sha, chunks: chunks, h: sha256.New()}, nil
}

type fileReader struct {
	ctx    context.Context
	s      *Store
	sha    images.Digest
	chunks []Chunk
	buf    []byte
	h      hash.Hash
	err    error
}

func (r *fileReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if len(r.chunks) == 0 {
			if got := images.Digest(r.h.Sum(nil)); got != r.sha {
				r.err = fmt.Errorf("content %s from %s: chunks hash to %s: %w", r.sha, r.s.b.Location(), got, ErrCorrupt)
			} else {
				r.err = io.EOF
			}
			continue
		}
		c := r.chunks[0]
		r.chunks = r.chunks[1:]
		b, err := r.s.GetChunk(r.ctx, c.ID)
		if err == nil && int64(len(b)) != c.Size {
			err = fmt.Errorf("content %s from %s: chunk %s is %d bytes, its list says %d: %w", r.sha, r.s.b.Location(), c.ID, len(b), c.Size, ErrCorrupt)
		}
		if err != nil {
			r.err = err
			return 0, err
		}
		r.h.Write(b)
		r.buf = b
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *fileReader) Close() error { return nil }

// PutFile stores the content read from r and returns its hash and size;
// when it returns, the content is durable. (Its objects are written
// without an fsync each and made durable by one Sync of the backend: a
// large file is hundreds of chunks.) Its chunks are stored loose, each in
// a file of its own, in either layout: content put alone is not in any
// image's pack index, and a reader over HTTP finds a loose object by its
// name alone. Imports write packs.
func (s *Store) PutFile(ctx context.Context, r io.Reader) (images.Digest, int64, error) {
	p := s.newPutterLayout(ctx, false, LayoutV1)
	sha, size, _, err := p.putFile(r)
	if werr := p.wait(); err == nil {
		err = werr
	}
	if err == nil && p.wrote {
		err = s.b.Sync(ctx)
	}
	return sha, size, err
}

// Manifest returns the manifest of image d, verified against d.
func (s *Store) Manifest(ctx context.Context, d images.Digest) (*images.Manifest, error) {
	s.packs.NoteImage(d, pack.MaxIndex)
	data, err := s.getObject(ctx, d, MaxManifest)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("image %s: not in store %s: %w", d, s.b.Location(), ErrNotFound)
		}
		return nil, err
	}
	m, err := images.ParseManifest(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("image %s from %s: %w", d, s.b.Location(), err)
	}
	// Knowing the image, its pack index is read with a tighter bound.
	s.packs.NoteImage(d, min(pack.MaxIndex, pack.IndexLimit(m)))
	return m, nil
}

// Index returns the index of image d, of at most 256 MiB; a reader that
// has the image's manifest calls IndexOf.
func (s *Store) Index(ctx context.Context, d images.Digest) (Index, error) {
	return s.IndexOf(ctx, d, maxListSize)
}

// IndexOf returns the index of image d, refusing one of more than max
// bytes (IndexLimit of the image's manifest).
func (s *Store) IndexOf(ctx context.Context, d images.Digest, max int64) (Index, error) {
	s.packs.NoteImage(d, pack.MaxIndex)
	h := DigestHandle(KindImage, d)
	var ix Index
	_, err := s.getVerified(ctx, h, max, func(data []byte) (err error) {
		ix, err = chunks.ParseIndex(h.Path()+" from "+s.b.Location(), data)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("image %s: not in store %s: %w", d, s.b.Location(), ErrNotFound)
	}
	return ix, err
}

// PutManifest stores m as an image and returns its digest. The content of
// every regular file must already be in the store.
func (s *Store) PutManifest(ctx context.Context, m *images.Manifest) (images.Digest, error) {
	return s.putManifest(ctx, m, nil)
}

// putManifest writes the manifest object and then the index (whose
// presence lists the image), both durably. lists holds chunk lists the
// caller already knows; the others are read from the store.
func (s *Store) putManifest(ctx context.Context, m *images.Manifest, lists Index) (images.Digest, error) {
	if err := m.Validate(); err != nil {
		return images.Digest{}, err
	}
	ix := Index{}
	seen := map[images.Digest]bool{}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Type != images.TypeFile || e.Size == 0 || seen[e.SHA256] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return images.Digest{}, err
		}
		seen[e.SHA256] = true
		if c, ok := lists[e.SHA256]; ok {
			ix[e.SHA256] = c
			continue
		}
		if e.Size <= MaxChunk {
			ok, err := s.packs.Has(ctx, e.SHA256)
			if err != nil {
				return images.Digest{}, err
			}
			if ok {
				continue
			}
		}
		c, err := s.FileChunksOf(ctx, e.SHA256, e.Size)
		if err != nil {
			return images.Digest{}, fmt.Errorf("image entry %s: %w", images.Escape(e.Path), err)
		}
		if len(c) > 1 {
			ix[e.SHA256] = c
		}
	}
	data := m.Bytes()
	if len(data) > MaxManifest {
		return images.Digest{}, fmt.Errorf("manifest of %d bytes: more than the %d a store's readers take: %w", len(data), MaxManifest, ErrTooLarge)
	}
	d := images.Sum(data)
	if err := s.put(ctx, DigestHandle(KindObject, d), data, true); err != nil {
		return d, err
	}
	if pe := s.packs.ImageEntries(m, ix); len(pe) > 0 {
		// Before the image appears: a reader of the image finds it.
		if err := s.b.Put(ctx, DigestHandle(KindImagePacks, d), pack.FormatIndex(pe), true); err != nil {
			return d, err
		}
	}
	if err := s.put(ctx, DigestHandle(KindImage, d), chunks.FormatIndex(ix), true); err != nil {
		return d, err
	}
	return d, nil
}

var (
	refRE    = regexp.MustCompile(`^([a-z0-9][a-z0-9._-]{0,127}):([A-Za-z0-9_][A-Za-z0-9._-]{0,127})$`)
	prefixRE = regexp.MustCompile(`^[0-9a-f]{4,64}$`)
)

// ParseRef splits "name:tag". A name is lowercase letters, digits, '.', '_'
// and '-', starting with a letter or digit; a tag may also hold capitals.
func ParseRef(ref string) (name, tag string, err error) {
	m := refRE.FindStringSubmatch(ref)
	if m == nil {
		return "", "", fmt.Errorf("reference %q: want NAME:TAG (name: [a-z0-9][a-z0-9._-]*, tag: [A-Za-z0-9_][A-Za-z0-9._-]*, up to 128 each)", ref)
	}
	return m[1], m[2], nil
}

func refHandle(ref string) (Handle, error) {
	name, tag, err := ParseRef(ref)
	if err != nil {
		return Handle{}, err
	}
	return Handle{Kind: KindRef, Name: name + "/" + tag}, nil
}

// SetRef points ref (name:tag) at image d, which must be in the store.
func (s *Store) SetRef(ctx context.Context, ref string, d images.Digest) error {
	h, err := refHandle(ref)
	if err != nil {
		return err
	}
	ok, err := s.b.Has(ctx, DigestHandle(KindImage, d))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("setting %s: image %s: not in store %s: %w", ref, d, s.b.Location(), ErrNotFound)
	}
	return s.b.Put(ctx, h, []byte(d.String()+"\n"), true)
}

// DeleteRef removes ref (name:tag); the image stays.
func (s *Store) DeleteRef(ctx context.Context, ref string) error {
	h, err := refHandle(ref)
	if err != nil {
		return err
	}
	return s.b.Delete(ctx, h)
}

// Ref returns the image digest ref (name:tag) points at.
func (s *Store) Ref(ctx context.Context, ref string) (images.Digest, error) {
	h, err := refHandle(ref)
	if err != nil {
		return images.Digest{}, err
	}
	data, err := s.b.Get(ctx, h, maxRefFile)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return images.Digest{}, fmt.Errorf("reference %s: not in store %s: %w", ref, s.b.Location(), ErrNotFound)
		}
		return images.Digest{}, err
	}
	d, err := ParseRefFile(data)
	if err != nil {
		return images.Digest{}, fmt.Errorf("reference %s from %s: %w", ref, s.b.Location(), err)
	}
	return d, nil
}

// ParseRefFile parses the content of a ref file: an image digest (64
// lowercase hex digits) and a newline, nothing else.
func ParseRefFile(data []byte) (images.Digest, error) {
	d, err := images.ParseDigest(strings.TrimSuffix(string(data), "\n"))
	if err != nil || len(data) != 65 || string(data) != d.String()+"\n" {
		return images.Digest{}, fmt.Errorf("content %.80q is not a digest and a newline: %w", data, ErrCorrupt)
	}
	return d, nil
}

// Resolve turns a reference into an image digest: a digest (with or
// without "sha256:"), a unique prefix of one (at least 4 hex digits; needs
// a backend that can list), or name:tag. Paths to tars are the caller's.
func (s *Store) Resolve(ctx context.Context, ref string) (images.Digest, error) {
	hex := strings.TrimPrefix(ref, "sha256:")
	if prefixRE.MatchString(hex) {
		if len(hex) == 64 {
			d, err := images.ParseDigest(hex)
			if err != nil {
				return d, err
			}
			ok, err := s.b.Has(ctx, DigestHandle(KindImage, d))
			if err != nil {
				return d, err
			}
			if !ok {
				return d, fmt.Errorf("image %s: not in store %s: %w", d, s.b.Location(), ErrNotFound)
			}
			return d, nil
		}
		var found []string
		err := s.b.List(ctx, KindImage, func(name string) error {
			if strings.HasPrefix(name, hex) {
				found = append(found, name)
			}
			return nil
		})
		if err != nil {
			return images.Digest{}, fmt.Errorf("resolving %s: %w", ref, err)
		}
		switch len(found) {
		case 0:
			if !strings.Contains(ref, ":") || strings.HasPrefix(ref, "sha256:") {
				return images.Digest{}, fmt.Errorf("image %s: no image in store %s has that digest prefix: %w", ref, s.b.Location(), ErrNotFound)
			}
		case 1:
			return images.ParseDigest(found[0])
		default:
			slices.Sort(found)
			return images.Digest{}, fmt.Errorf("image %s: %w: %d images start so (%s…)", ref, ErrAmbiguous, len(found), strings.Join(found[:2], ", "))
		}
	}
	return s.Ref(ctx, ref)
}

// ImageInfo is one image of the store and the refs naming it.
type ImageInfo struct {
	Digest images.Digest `json:"digest"`
	Refs   []string      `json:"refs"`
}

// Images lists the store's images by digest, each with its refs sorted.
func (s *Store) Images(ctx context.Context) ([]ImageInfo, error) {
	byDigest := map[images.Digest]*ImageInfo{}
	var out []ImageInfo
	err := s.b.List(ctx, KindImage, func(name string) error {
		d, err := images.ParseDigest(name)
		if err != nil {
			return err
		}
		out = append(out, ImageInfo{Digest: d, Refs: []string{}})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing images: %w", err)
	}
	slices.SortFunc(out, func(a, b ImageInfo) int { return bytes.Compare(a.Digest[:], b.Digest[:]) })
	for i := range out {
		byDigest[out[i].Digest] = &out[i]
	}
	var refs []string
	if err := s.b.List(ctx, KindRef, func(name string) error { refs = append(refs, name); return nil }); err != nil {
		return nil, fmt.Errorf("listing refs: %w", err)
	}
	slices.Sort(refs)
	for _, r := range refs {
		ref := strings.Replace(r, "/", ":", 1)
		d, err := s.Ref(ctx, ref)
		if err != nil {
			return nil, err
		}
		if im := byDigest[d]; im != nil {
			im.Refs = append(im.Refs, ref)
		}
	}
	return out, nil
}

// PutRaw stores data, compressed, under h without any check that it
// belongs there: for repair tools and for tests of verification.
func (s *Store) PutRaw(ctx context.Context, h Handle, data []byte) error {
	return s.put(ctx, h, data, true)
}
