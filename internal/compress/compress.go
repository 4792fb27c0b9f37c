package compress

import (
	"bufio"
	"compress/bzip2"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// Format is a compression format.
type Format string

// The formats read.
const (
	None  Format = ""
	Gzip  Format = "gzip"
	XZ    Format = "xz"
	Zstd  Format = "zstd"
	Bzip2 Format = "bzip2"
	LZMA  Format = "lzma" // the legacy .lzma container of old RPMs
)

// ErrLimit is wrapped by the error for a stream whose header asks for
// more memory than Options.MaxWindow.
var ErrLimit = errors.New("compress: stream over the memory limit")

// ErrFormat is wrapped for a format that is not read.
var ErrFormat = errors.New("compress: unknown format")

// Options are the limits and choices of a reader.
type Options struct {
	// MaxWindow bounds what a decoder may allocate for its window or
	// dictionary (xz, lzma, zstd), in bytes. Required for those formats:
	// the caller states its limit (xz -9 uses 64 MiB, zstd -19 8 MiB,
	// zstd --long up to 128 MiB, lzma presets up to 64 MiB).
	MaxWindow int64
	// ExternalXZ decompresses xz with the host's xz(1) when it is
	// installed, several times faster than the Go reader and the same
	// result (both check the stream's integrity). Its memory is bounded
	// by its --memlimit, set to MaxWindow plus its own overhead.
	ExternalXZ bool
}

// NewReader returns a reader of r decompressed as f. Close releases the
// decoder (and waits for an external xz); it does not close r. A corrupt
// or truncated stream shows as an error from Read.
func NewReader(r io.Reader, f Format, o Options) (io.ReadCloser, error) {
	if f != None && f != Gzip && f != Bzip2 && o.MaxWindow <= 0 {
		return nil, fmt.Errorf("compress: %s reader without a memory limit", f)
	}
	switch f {
	case None:
		return io.NopCloser(r), nil
	case Gzip:
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return z, nil
	case Bzip2:
		return io.NopCloser(bzip2.NewReader(r)), nil
	case Zstd:
		z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(o.MaxWindow)))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return z.IOReadCloser(), nil
	case XZ:
		br := bufio.NewReaderSize(r, 64<<10)
		if err := checkXZDict(br, o.MaxWindow); err != nil {
			return nil, err
		}
		if o.ExternalXZ && xzPath() != "" {
			return newExternal(br, xzPath(), "-dc", "-T1", fmt.Sprintf("--memlimit-decompress=%d", o.MaxWindow+(64<<20)))
		}
		z, err := xz.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		return io.NopCloser(z), nil
	case LZMA:
		br := bufio.NewReader(r)
		// The header names the dictionary size, which the reader
		// allocates.
		if h, _ := br.Peek(5); len(h) == 5 && int64(binary.LittleEndian.Uint32(h[1:5])) > o.MaxWindow {
			return nil, fmt.Errorf("%w: lzma dictionary of %d bytes (at most %d)", ErrLimit, binary.LittleEndian.Uint32(h[1:5]), o.MaxWindow)
		}
		z, err := lzma.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("lzma: %w", err)
		}
		return io.NopCloser(z), nil
	}
	return nil, fmt.Errorf("%w %q", ErrFormat, f)
}

// checkXZDict reads the LZMA2 dictionary size from the first block header
// of an xz stream (the Go reader allocates it) and refuses more than max.
// Writers of packages write single-block streams; a later block of a
// crafted stream is not checked here (xz(1) enforces its --memlimit on
// every block).
func checkXZDict(br *bufio.Reader, max int64) error {
	head, _ := br.Peek(12 + 1024)
	if len(head) < 13 || head[12] == 0 {
		return nil // too short, or no block: the reader reports it
	}
	hdr := head[12:]
	size := (int(hdr[0]) + 1) * 4
	if len(hdr) < size {
		return nil
	}
	hdr = hdr[1:size]
	flags := hdr[0]
	pos := 1
	varint := func() (uint64, bool) {
		var v uint64
		for i := 0; i < 9 && pos < len(hdr); i++ {
			b := hdr[pos]
			pos++
			v |= uint64(b&0x7f) << (7 * i)
			if b&0x80 == 0 {
				return v, true
			}
		}
		return 0, false
	}
	if flags&0x40 != 0 {
		if _, ok := varint(); !ok {
			return nil
		}
	}
	if flags&0x80 != 0 {
		if _, ok := varint(); !ok {
			return nil
		}
	}
	for f := 0; f <= int(flags&3); f++ {
		id, ok1 := varint()
		n, ok2 := varint()
		if !ok1 || !ok2 || pos+int(n) > len(hdr) {
			return nil
		}
		if id == 0x21 && n == 1 {
			p := hdr[pos]
			if p > 40 {
				return nil
			}
			if dict := uint64(2|(p&1)) << (p/2 + 11); dict > uint64(max) {
				return fmt.Errorf("%w: xz dictionary of %d bytes (at most %d)", ErrLimit, dict, max)
			}
		}
		pos += int(n)
	}
	return nil
}

// xzPath is the host's xz(1); "" when absent.
var xzPath = sync.OnceValue(func() string {
	p, err := exec.LookPath("xz")
	if err != nil {
		return ""
	}
	return p
})

// external runs a decompressor program with r on its stdin.
type external struct {
	cmd    *exec.Cmd
	out    io.ReadCloser
	stderr strings.Builder
}

func newExternal(r io.Reader, prog string, args ...string) (io.ReadCloser, error) {
	e := &external{cmd: exec.Command(prog, args...)}
	e.cmd.Stdin = r
	e.cmd.Stderr = &e.stderr
	out, err := e.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	e.out = out
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", prog, err)
	}
	return e, nil
}

func (e *external) Read(p []byte) (int, error) {
	n, err := e.out.Read(p)
	if err == io.EOF {
		// The stream is only good if the program says so.
		if werr := e.wait(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

func (e *external) wait() error {
	if e.cmd.ProcessState != nil {
		if !e.cmd.ProcessState.Success() {
			return fmt.Errorf("xz: %s", strings.TrimSpace(e.stderr.String()))
		}
		return nil
	}
	if err := e.cmd.Wait(); err != nil {
		return fmt.Errorf("xz: %s (%v)", strings.TrimSpace(e.stderr.String()), err)
	}
	return nil
}

// Close stops the program if it is still running; the stream was not
// read to its end, so its exit status says nothing.
func (e *external) Close() error {
	if e.cmd.ProcessState == nil {
		_ = e.out.Close()
		_ = e.cmd.Process.Kill()
		_ = e.cmd.Wait()
	}
	return nil
}
