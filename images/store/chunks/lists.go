package chunks

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"

	"github.com/ingotfleet/ingot/images"
)

// Chunk is one piece of a file's content: the sha256 of its bytes (which
// names its object) and its length.
type Chunk struct {
	ID   images.Digest `json:"id"`
	Size int64         `json:"size"`
}

// Index lists, for one image, the chunks of every regular file whose
// content is more than one chunk, by the file's content hash. A file
// missing from it is a single chunk named by its content hash (or empty).
type Index map[images.Digest][]Chunk

// Chunks of the file with content hash sha and size size, by the index.
func (ix Index) Chunks(sha images.Digest, size int64) []Chunk {
	if c, ok := ix[sha]; ok {
		return c
	}
	if size == 0 {
		return nil
	}
	return []Chunk{{ID: sha, Size: size}}
}

// FormatChunkList writes a chunk list: text, one line per chunk: "<sha256 hex> <size>\n".
func FormatChunkList(chunks []Chunk) []byte {
	b := make([]byte, 0, len(chunks)*80)
	for _, c := range chunks {
		b = appendChunk(b, c)
	}
	return b
}

func appendChunk(b []byte, c Chunk) []byte {
	b = append(b, c.ID.String()...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, c.Size, 10)
	return append(b, '\n')
}

// ParseChunkList parses a chunk list; name says where it came from in
// errors. It refuses anything FormatChunkList would not write.
func ParseChunkList(name string, data []byte) ([]Chunk, error) {
	var out []Chunk
	for line := 1; len(data) > 0; line++ {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil, fmt.Errorf("chunk list %s line %d: no final newline", name, line)
		}
		fields := bytes.Fields(data[:i])
		if len(fields) != 2 {
			return nil, fmt.Errorf("chunk list %s line %d: want \"<sha256> <size>\"", name, line)
		}
		c, err := parseChunk(fields[0], fields[1])
		if err != nil {
			return nil, fmt.Errorf("chunk list %s line %d: %w", name, line, err)
		}
		if !bytes.Equal(appendChunk(nil, c), data[:i+1]) {
			return nil, fmt.Errorf("chunk list %s line %d: not in canonical form", name, line)
		}
		out = append(out, c)
		data = data[i+1:]
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("chunk list %s: %d chunks, a list holds at least 2", name, len(out))
	}
	return out, nil
}

func parseChunk(id, size []byte) (Chunk, error) {
	d, err := images.ParseDigest(string(id))
	if err != nil || len(id) != 64 {
		return Chunk{}, fmt.Errorf("bad chunk id %q", id)
	}
	n, err := strconv.ParseInt(string(size), 10, 64)
	if err != nil || n < 1 || n > MaxChunk {
		return Chunk{}, fmt.Errorf("bad chunk size %q (want 1 to %d)", size, MaxChunk)
	}
	return Chunk{ID: d, Size: n}, nil
}

// FormatIndex writes an index. An index is text, one line per chunk of every listed file, files in
// ascending hash order and each file's chunks in order:
// "<file sha256 hex> <chunk sha256 hex> <size>\n".
func FormatIndex(ix Index) []byte {
	files := make([]images.Digest, 0, len(ix))
	for d := range ix {
		files = append(files, d)
	}
	sortDigests(files)
	var b []byte
	for _, f := range files {
		for _, c := range ix[f] {
			b = append(b, f.String()...)
			b = append(b, ' ')
			b = appendChunk(b, c)
		}
	}
	return b
}

// ParseIndex parses an image index; name says where it came from.
func ParseIndex(name string, data []byte) (Index, error) {
	ix := Index{}
	var prev images.Digest
	first := true
	for line := 1; len(data) > 0; line++ {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil, fmt.Errorf("index %s line %d: no final newline", name, line)
		}
		fields := bytes.Fields(data[:i])
		if len(fields) != 3 {
			return nil, fmt.Errorf("index %s line %d: want \"<file sha256> <chunk sha256> <size>\"", name, line)
		}
		f, err := images.ParseDigest(string(fields[0]))
		if err != nil || len(fields[0]) != 64 {
			return nil, fmt.Errorf("index %s line %d: bad file hash %q", name, line, fields[0])
		}
		c, err := parseChunk(fields[1], fields[2])
		if err != nil {
			return nil, fmt.Errorf("index %s line %d: %w", name, line, err)
		}
		want := append(append([]byte(f.String()), ' '), appendChunk(nil, c)...)
		if !bytes.Equal(want, data[:i+1]) {
			return nil, fmt.Errorf("index %s line %d: not in canonical form", name, line)
		}
		if !first && f != prev {
			if bytes.Compare(f[:], prev[:]) < 0 {
				return nil, fmt.Errorf("index %s line %d: files out of order", name, line)
			}
			if _, dup := ix[f]; dup {
				return nil, fmt.Errorf("index %s line %d: file %s listed twice", name, line, f)
			}
		}
		ix[f] = append(ix[f], c)
		prev, first = f, false
		data = data[i+1:]
	}
	for f, cs := range ix {
		if len(cs) < 2 {
			return nil, fmt.Errorf("index %s: file %s has %d chunk, a list holds at least 2", name, f, len(cs))
		}
	}
	return ix, nil
}

func sortDigests(ds []images.Digest) {
	slices.SortFunc(ds, func(a, b images.Digest) int { return bytes.Compare(a[:], b[:]) })
}

// Bounds of the formats, from which a reader bounds what it reads.
const (
	// listLine is the longest line of a chunk list: a hash, a space, a
	// size of at most 6 digits (MaxChunk) and a newline.
	listLine = 64 + 1 + 6 + 1
	// indexLine is the longest line of an index: a file hash and a space
	// before a chunk list line.
	indexLine = 64 + 1 + listLine
)

// MaxChunks is the most chunks content of size bytes can be cut into:
// every chunk but the last holds at least MinChunk bytes.
func MaxChunks(size int64) int64 { return size/MinChunk + 1 }

// ListLimit is the most bytes the chunk list of a file of size bytes can
// take.
func ListLimit(size int64) int64 { return MaxChunks(max(size, 0)) * listLine }

// IndexLimit is the most bytes the index of image m can take: a line per
// chunk of every distinct content of more than one chunk.
func IndexLimit(m *images.Manifest) int64 {
	var n int64
	seen := map[images.Digest]bool{}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Type != images.TypeFile || e.Size <= MinChunk || seen[e.SHA256] {
			continue
		}
		seen[e.SHA256] = true
		n += MaxChunks(e.Size) * indexLine
	}
	return n
}

