package deb

import (
	"compress/bzip2"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compression is how a tar member of a .deb is compressed.
type Compression string

// The compressions dpkg-deb writes (and bzip2, which it still reads).
const (
	CompressNone  Compression = ""
	CompressGzip  Compression = ".gz"
	CompressXZ    Compression = ".xz"
	CompressZstd  Compression = ".zst"
	CompressBzip2 Compression = ".bz2"
)

// memberCompression splits "data.tar.xz" into ("data", CompressXZ).
func memberCompression(name string) (base string, c Compression, ok bool) {
	for _, c := range []Compression{CompressGzip, CompressXZ, CompressZstd, CompressBzip2, CompressNone} {
		for _, b := range []string{"control", "data"} {
			if name == b+".tar"+string(c) {
				return b, c, true
			}
		}
	}
	return "", "", false
}

// xzPath is the host's xz(1), which decompresses several times faster
// than the pure-Go reader; "" when absent. Decompression is the same
// either way (both check the stream's integrity); only speed differs.
var xzPath = sync.OnceValue(func() string {
	p, err := exec.LookPath("xz")
	if err != nil {
		return ""
	}
	return p
})

// UseExternalXZ chooses the host's xz(1) for .xz members when it is
// installed (the default). Tests set it false to exercise the Go reader.
var UseExternalXZ = true

// decompress wraps r by compression c. Closing the result releases
// decoder resources (and waits for an external xz).
func decompress(r io.Reader, c Compression) (io.ReadCloser, error) {
	switch c {
	case CompressNone:
		return io.NopCloser(r), nil
	case CompressGzip:
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return z, nil
	case CompressXZ:
		if UseExternalXZ && xzPath() != "" {
			return newExternal(r, xzPath(), "-dc", "-T1")
		}
		z, err := xz.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		return io.NopCloser(z), nil
	case CompressZstd:
		z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return z.IOReadCloser(), nil
	case CompressBzip2:
		return io.NopCloser(bzip2.NewReader(r)), nil
	}
	return nil, fmt.Errorf("unknown compression %q", c)
}

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

func (e *external) Close() error {
	if e.cmd.ProcessState == nil {
		e.out.Close()
		e.cmd.Process.Kill()
		e.cmd.Wait()
	}
	return nil
}
