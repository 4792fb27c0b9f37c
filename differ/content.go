package differ

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	udiff "github.com/aymanbagabas/go-udiff"

	"github.com/ingotfleet/ingot/images"
)

// errTooBig is returned by gunzip when content exceeds its limit.
var errTooBig = errors.New("over the size cap")

// gunzip decompresses a whole gzip stream (every member) of at most limit bytes.
func gunzip(b []byte, limit int64) ([]byte, error) {
	z, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(z, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, errTooBig
	}
	return out, nil
}

// isText reports whether b looks like text: valid UTF-8 without NUL bytes.
func isText(b []byte) bool {
	return bytes.IndexByte(b, 0) < 0 && utf8.Valid(b)
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// contentDiff says how the content of a changed file changed: a unified
// diff for text (of the decompressed content for .gz files), or why not.
func contentDiff(p string, ea, eb *images.Entry, a, b []byte, opts Options) *Content {
	if ea.Size > opts.MaxDiffSize || eb.Size > opts.MaxDiffSize || a == nil || b == nil {
		return &Content{Note: fmt.Sprintf("not diffed: larger than the diff size cap of %s (--max-diff-size)", sizeText(opts.MaxDiffSize))}
	}
	if sniffedBinary(a) || sniffedBinary(b) {
		return &Content{Note: "binary content: see size and sha256"}
	}
	c := &Content{}
	if strings.HasSuffix(p, ".gz") {
		da, erra := gunzip(a, opts.MaxDiffSize)
		db, errb := gunzip(b, opts.MaxDiffSize)
		switch {
		case errors.Is(erra, errTooBig) || errors.Is(errb, errTooBig):
			return &Content{Gzip: true, Note: fmt.Sprintf("not diffed: decompressed content larger than the diff size cap of %s (--max-diff-size)", sizeText(opts.MaxDiffSize))}
		case erra == nil && errb == nil:
			if bytes.Equal(da, db) {
				return &Content{Gzip: true, Note: "same decompressed content: only the gzip wrapper differs"}
			}
			c.Gzip, a, b = true, da, db
		default:
			c.Note = "not valid gzip; compared as binary. "
		}
	}
	if !isText(a) || !isText(b) {
		c.Note += "binary content: see size and sha256"
		return c
	}
	name := images.Escape(p)
	if c.Gzip {
		name = strings.TrimSuffix(name, ".gz") + " (decompressed)"
	}
	sa, sb := string(a), string(b)
	d, err := udiff.ToUnified("a/"+name, "b/"+name, sa, udiff.Lines(sa, sb), opts.Context)
	if err != nil {
		c.Note += "diff failed: " + err.Error()
		return c
	}
	lines := strings.SplitAfter(d, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if opts.MaxDiffLines > 0 && len(lines) > opts.MaxDiffLines {
		c.Note = fmt.Sprintf("diff cut after %d of its %d lines (--max-diff-lines)", opts.MaxDiffLines, len(lines))
		d = strings.Join(lines[:opts.MaxDiffLines], "")
	}
	c.Diff = d
	return c
}
