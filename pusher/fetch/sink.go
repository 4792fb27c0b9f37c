package fetch

import (
	"bytes"
	"fmt"
	"io"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/beneath"
)

// HostFile is a file on the host that may hold content a sync needs: a
// path beneath a directory (the root, the agent's backups, a booted
// slot), opened only as a regular file.
type HostFile struct {
	Dir *beneath.Dir
	Rel string
}

// Sink receives a file's content: its bytes go through a running sha256.
// Reset drops what was written, so a caller can try another source.
type Sink interface {
	io.Writer
	Reset() error
	Sum() images.Digest
	Len() int64
}

// MemSink is a Sink that holds a small file's content in memory, up to
// Max bytes.
type MemSink struct {
	buf bytes.Buffer
	Max int64
}

func (m *MemSink) Write(p []byte) (int, error) {
	if int64(m.buf.Len()+len(p)) > m.Max {
		return 0, fmt.Errorf("content larger than %d bytes", m.Max)
	}
	return m.buf.Write(p)
}

// Reset implements Sink.
func (m *MemSink) Reset() error { m.buf.Reset(); return nil }

// Sum implements Sink.
func (m *MemSink) Sum() images.Digest { return images.Sum(m.buf.Bytes()) }

// Len implements Sink.
func (m *MemSink) Len() int64 { return int64(m.buf.Len()) }

// Bytes is the content written.
func (m *MemSink) Bytes() []byte { return m.buf.Bytes() }
