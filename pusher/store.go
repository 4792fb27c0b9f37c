package pusher

// The store layout the pusher reads. It is kept behind the Source
// interface so the images/store package can take its place; the paths
// are the whole contract with any static HTTP server or cache:
//
//	objects/HH/HEX          zstd of a file's content; HEX = sha256 of the content
//	manifests/HEX           an image's manifest; HEX = its digest
//	signatures/HEX          the image's signature file (see pusher/signing)
//	refs/NAME/TAG           "HEX\n": the only mutable files
//	deltas/FROM/TO          zstd of content TO with content FROM as raw dictionary
//
// It reads the images/store layout too: a manifest stored as an object
// (objects/HH/DIGEST), and files of several chunks through their chunk
// list (lists/HH/HEX, zstd of "CHUNK SIZE" lines), so images made by
// `ingot image import` sync as well.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
)

// ErrNotFound is returned by a Source for an object no URL holds.
var ErrNotFound = errors.New("pusher: object not found")

// ErrCorrupt is wrapped by errors about bytes that do not match their hash.
var ErrCorrupt = errors.New("pusher: corrupt object")

// Source is where a sync gets an image. Every method returns verified
// bytes: content whose sha256 is the name asked for.
type Source interface {
	// Manifest returns the image's manifest bytes.
	Manifest(ctx context.Context, d images.Digest) ([]byte, error)
	// Signature returns the image's signature file (ErrNotFound if unsigned).
	Signature(ctx context.Context, d images.Digest) ([]byte, error)
	// Object returns a file's content; size is the expected length.
	Object(ctx context.Context, sha images.Digest, size int64) ([]byte, error)
	// Delta returns content "to" rebuilt from old (whose sha256 is from)
	// and a precomputed delta; ErrNotFound when the store has none.
	Delta(ctx context.Context, from, to images.Digest, old []byte) ([]byte, error)
}

// Layout paths.
func objectPath(d images.Digest) string {
	h := d.String()
	return "objects/" + h[:2] + "/" + h
}
func manifestPath(d images.Digest) string  { return "manifests/" + d.String() }
func signaturePath(d images.Digest) string { return "signatures/" + d.String() }
func deltaPath(from, to images.Digest) string {
	return "deltas/" + from.String() + "/" + to.String()
}
func refPath(name, tag string) string { return "refs/" + name + "/" + tag }
func listPath(d images.Digest) string {
	h := d.String()
	return "lists/" + h[:2] + "/" + h
}

// fetcher is how a Source gets one path of the layout, with a check.
type fetcher func(ctx context.Context, path string, check func(name string, b []byte) ([]byte, error)) ([]byte, error)

// manifestVia reads a manifest at manifests/HEX, else as an object.
func manifestVia(ctx context.Context, get fetcher, d images.Digest) ([]byte, error) {
	b, err := get(ctx, manifestPath(d), func(name string, b []byte) ([]byte, error) {
		if images.Sum(b) != d {
			return nil, fmt.Errorf("%w: %s", ErrCorrupt, name)
		}
		return b, nil
	})
	if errors.Is(err, ErrNotFound) {
		return get(ctx, objectPath(d), func(name string, b []byte) ([]byte, error) {
			return decodeObject(name, b, d, -1)
		})
	}
	return b, err
}

// objectVia reads a file's content: one object, else its chunk list and
// every chunk, each verified, and the whole verified at the end.
func objectVia(ctx context.Context, get fetcher, sha images.Digest, size int64) ([]byte, error) {
	b, err := get(ctx, objectPath(sha), func(name string, b []byte) ([]byte, error) {
		return decodeObject(name, b, sha, size)
	})
	if !errors.Is(err, ErrNotFound) {
		return b, err
	}
	var chunks []store.Chunk
	if _, err := get(ctx, listPath(sha), func(name string, b []byte) ([]byte, error) {
		raw, err := zstdDecoder().DecodeAll(b, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
		}
		chunks, err = store.ParseChunkList(name, raw)
		return nil, err
	}); err != nil {
		return nil, err
	}
	out := make([]byte, 0, max(size, 0))
	for _, c := range chunks {
		cb, err := get(ctx, objectPath(c.ID), func(name string, b []byte) ([]byte, error) {
			return decodeObject(name, b, c.ID, c.Size)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, cb...)
	}
	if (size >= 0 && int64(len(out)) != size) || images.Sum(out) != sha {
		return nil, fmt.Errorf("%w: chunks of %s do not add up to its content", ErrCorrupt, sha)
	}
	return out, nil
}

var (
	decoderOnce sync.Once
	decoder     *zstd.Decoder
)

func zstdDecoder() *zstd.Decoder {
	decoderOnce.Do(func() {
		decoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(4<<30))
	})
	return decoder
}

// decodeObject decompresses an object and checks its hash.
func decodeObject(name string, b []byte, sha images.Digest, size int64) ([]byte, error) {
	out, err := zstdDecoder().DecodeAll(b, make([]byte, 0, max(size, 0)))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	if size >= 0 && int64(len(out)) != size {
		return nil, fmt.Errorf("%w: %s: %d bytes, want %d", ErrCorrupt, name, len(out), size)
	}
	if images.Sum(out) != sha {
		return nil, fmt.Errorf("%w: %s: content does not match its sha256", ErrCorrupt, name)
	}
	return out, nil
}

func decodeDelta(name string, b []byte, from, to images.Digest, old []byte) ([]byte, error) {
	if images.Sum(old) != from {
		return nil, fmt.Errorf("delta %s: the old content is not %s", name, from)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderDictRaw(0, old), zstd.WithDecoderMaxMemory(4<<30), zstd.WithDecoderMaxWindow(1<<31))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	out, err := dec.DecodeAll(b, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	if images.Sum(out) != to {
		return nil, fmt.Errorf("%w: %s: result does not match its sha256", ErrCorrupt, name)
	}
	return out, nil
}

// DirSource reads a store directory.
type DirSource struct{ Dir string }

func (s DirSource) read(p string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(s.Dir, filepath.FromSlash(p)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s in %s", ErrNotFound, p, s.Dir)
	}
	return b, err
}

func (s DirSource) get(_ context.Context, p string, check func(string, []byte) ([]byte, error)) ([]byte, error) {
	b, err := s.read(p)
	if err != nil {
		return nil, err
	}
	return check(filepath.Join(s.Dir, p), b)
}

// Manifest implements Source.
func (s DirSource) Manifest(ctx context.Context, d images.Digest) ([]byte, error) {
	return manifestVia(ctx, s.get, d)
}

// Signature implements Source.
func (s DirSource) Signature(_ context.Context, d images.Digest) ([]byte, error) {
	return s.read(signaturePath(d))
}

// Object implements Source.
func (s DirSource) Object(ctx context.Context, sha images.Digest, size int64) ([]byte, error) {
	return objectVia(ctx, s.get, sha, size)
}

// Delta implements Source.
func (s DirSource) Delta(_ context.Context, from, to images.Digest, old []byte) ([]byte, error) {
	b, err := s.read(deltaPath(from, to))
	if err != nil {
		return nil, err
	}
	return decodeDelta(filepath.Join(s.Dir, deltaPath(from, to)), b, from, to, old)
}

// Ref reads refs/NAME/TAG.
func (s DirSource) Ref(name, tag string) (images.Digest, error) {
	b, err := s.read(refPath(name, tag))
	if err != nil {
		return images.Digest{}, err
	}
	return images.ParseDigest(strings.TrimSpace(string(b)))
}

// StoreWriter writes the layout into a directory.
type StoreWriter struct {
	Dir   string
	Level zstd.EncoderLevel
}

func (w StoreWriter) put(p string, fill func(io.Writer) error) error {
	name := filepath.Join(w.Dir, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return writeFileAtomic(name, 0o644, fill)
}

func (w StoreWriter) has(p string) bool {
	_, err := os.Stat(filepath.Join(w.Dir, filepath.FromSlash(p)))
	return err == nil
}

func (w StoreWriter) level() zstd.EncoderLevel {
	if w.Level == 0 {
		return zstd.SpeedDefault
	}
	return w.Level
}

// PutObject stores content under its sha256 (once).
func (w StoreWriter) PutObject(content []byte) (images.Digest, error) {
	d := images.Sum(content)
	if w.has(objectPath(d)) {
		return d, nil
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(w.level()), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return d, err
	}
	defer enc.Close()
	z := enc.EncodeAll(content, nil)
	return d, w.put(objectPath(d), func(f io.Writer) error { _, err := f.Write(z); return err })
}

// PutManifest stores a manifest and returns its digest.
func (w StoreWriter) PutManifest(m *images.Manifest) (images.Digest, error) {
	b := m.Bytes()
	d := images.Sum(b)
	return d, w.put(manifestPath(d), func(f io.Writer) error { _, err := f.Write(b); return err })
}

// PutSignature writes an image's signature file.
func (w StoreWriter) PutSignature(d images.Digest, sig []byte) error {
	return w.put(signaturePath(d), func(f io.Writer) error { _, err := f.Write(sig); return err })
}

// Signature reads an image's signature file (nil when there is none).
func (w StoreWriter) Signature(d images.Digest) []byte {
	b, _ := os.ReadFile(filepath.Join(w.Dir, signaturePath(d)))
	return b
}

// SetRef points NAME:TAG at d.
func (w StoreWriter) SetRef(nameTag string, d images.Digest) error {
	name, tag, ok := strings.Cut(nameTag, ":")
	if !ok || name == "" || tag == "" || strings.Contains(tag, "/") || strings.Contains(name, "..") {
		return fmt.Errorf("bad image name %q: want NAME:TAG", nameTag)
	}
	return w.put(refPath(name, tag), func(f io.Writer) error { _, err := fmt.Fprintln(f, d); return err })
}

// PutDelta stores the delta from old to new content (zstd with old as raw
// dictionary). It returns the stored size.
func (w StoreWriter) PutDelta(old, new []byte) (int64, error) {
	from, to := images.Sum(old), images.Sum(new)
	p := deltaPath(from, to)
	if fi, err := os.Stat(filepath.Join(w.Dir, filepath.FromSlash(p))); err == nil {
		return fi.Size(), nil
	}
	z, err := encodeDelta(old, new, w.level())
	if err != nil {
		return 0, err
	}
	return int64(len(z)), w.put(p, func(f io.Writer) error { _, err := f.Write(z); return err })
}

func encodeDelta(old, new []byte, level zstd.EncoderLevel) ([]byte, error) {
	window := zstd.MaxWindowSize
	need := len(old) + len(new)
	for window > zstd.MinWindowSize && window/2 >= need {
		window /= 2
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderDictRaw(0, old), zstd.WithWindowSize(window))
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	return enc.EncodeAll(new, nil), nil
}

// ResolveRef turns a reference into a digest: 64 hex digits, a unique
// prefix of a manifest in the store directory, or NAME:TAG.
func ResolveRef(storeDir, ref string) (images.Digest, error) {
	if d, err := images.ParseDigest(strings.TrimPrefix(ref, "sha256:")); err == nil {
		return d, nil
	}
	if name, tag, ok := strings.Cut(ref, ":"); ok {
		d, err := DirSource{storeDir}.Ref(name, tag)
		if err != nil {
			return d, fmt.Errorf("resolving %s: %w", ref, err)
		}
		return d, nil
	}
	if len(ref) >= 4 && strings.Trim(ref, "0123456789abcdef") == "" {
		var found []string
		for _, dir := range []string{"manifests", "images"} {
			ents, _ := os.ReadDir(filepath.Join(storeDir, dir))
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ref) && !slices.Contains(found, e.Name()) {
					found = append(found, e.Name())
				}
			}
		}
		if len(found) == 1 {
			return images.ParseDigest(found[0])
		}
		if len(found) > 1 {
			return images.Digest{}, fmt.Errorf("resolving %s: ambiguous prefix (%d images)", ref, len(found))
		}
	}
	return images.Digest{}, fmt.Errorf("resolving %s: no such image in %s", ref, storeDir)
}

// Publish records the directory tree at root as an image in the store:
// every file's content as an object, then the manifest. User and group
// names are left out (numeric ids only).
func Publish(ctx context.Context, w StoreWriter, root string) (images.Digest, *images.Manifest, error) {
	nodes, err := Scan(ctx, root, ScanOptions{})
	if err != nil {
		return images.Digest{}, nil, err
	}
	for i := range nodes {
		if err := ctx.Err(); err != nil {
			return images.Digest{}, nil, err
		}
		n := &nodes[i]
		if n.Type != images.TypeFile {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, n.Path))
		if err != nil {
			return images.Digest{}, nil, fmt.Errorf("publishing %s: %w", root, err)
		}
		if images.Sum(b) != n.SHA256 {
			return images.Digest{}, nil, fmt.Errorf("publishing %s: %s changed during the scan", root, n.Path)
		}
		if _, err := w.PutObject(b); err != nil {
			return images.Digest{}, nil, err
		}
	}
	m, err := NodesManifest(nodes)
	if err != nil {
		return images.Digest{}, nil, fmt.Errorf("publishing %s: %w", root, err)
	}
	d, err := w.PutManifest(m)
	return d, m, err
}

// DeltaStats is what ComputeDeltas did.
type DeltaStats struct {
	Files      int   // changed files considered
	Deltas     int   // deltas stored (smaller than the whole object)
	DeltaBytes int64 // their total size
	WholeBytes int64 // what the same files cost as whole compressed objects
}

// ComputeDeltas stores, for every path that is a regular file in both
// images with different content, the delta from A's version to B's, when
// it is smaller than B's whole compressed object. It is done once per
// image pair; hosts at A then fetch deltas instead of objects.
func ComputeDeltas(ctx context.Context, w StoreWriter, a, b images.Digest) (DeltaStats, error) {
	var st DeltaStats
	src := DirSource{w.Dir}
	ma, err := loadManifest(ctx, src, a)
	if err != nil {
		return st, err
	}
	mb, err := loadManifest(ctx, src, b)
	if err != nil {
		return st, err
	}
	type pair struct{ from, to *images.Entry }
	var pairs []pair
	seen := map[[2]images.Digest]bool{}
	for i := range mb.Entries {
		eb := &mb.Entries[i]
		if eb.Type != images.TypeFile {
			continue
		}
		ea := ma.Lookup(eb.Path)
		if ea == nil || ea.Type != images.TypeFile || ea.SHA256 == eb.SHA256 || ea.Size == 0 || eb.Size == 0 {
			continue
		}
		k := [2]images.Digest{ea.SHA256, eb.SHA256}
		if seen[k] {
			continue
		}
		seen[k] = true
		pairs = append(pairs, pair{ea, eb})
	}
	var mu sync.Mutex
	var first error
	next := make(chan pair)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				old, err := src.Object(ctx, p.from.SHA256, p.from.Size)
				if err == nil {
					var nw []byte
					nw, err = src.Object(ctx, p.to.SHA256, p.to.Size)
					if err == nil {
						var whole os.FileInfo
						whole, err = os.Stat(filepath.Join(w.Dir, objectPath(p.to.SHA256)))
						if err == nil {
							var z []byte
							z, err = encodeDelta(old, nw, w.level())
							mu.Lock()
							st.Files++
							st.WholeBytes += whole.Size()
							mu.Unlock()
							if err == nil && int64(len(z)) < whole.Size()*9/10 {
								err = w.put(deltaPath(p.from.SHA256, p.to.SHA256), func(f io.Writer) error { _, err := f.Write(z); return err })
								mu.Lock()
								st.Deltas++
								st.DeltaBytes += int64(len(z))
								mu.Unlock()
							} else if err == nil {
								mu.Lock()
								st.DeltaBytes += whole.Size()
								mu.Unlock()
							}
						}
					}
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("delta for %s: %w", p.to.Path, err)
					}
					mu.Unlock()
				}
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
	return st, ctx.Err()
}

func loadManifest(ctx context.Context, src Source, d images.Digest) (*images.Manifest, error) {
	b, err := src.Manifest(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	m, err := images.ParseManifest(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", d, err)
	}
	return m, nil
}
