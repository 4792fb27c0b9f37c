package debrepo

import (
	"bytes"

	"github.com/ingotfleet/ingot/builder/deb"
)

// Packages, Release and .sources files are deb822 text, read by the
// project's one parser in builder/deb; fields are read decoded
// (Paragraph.Text).

// ParseError is a syntax or content error at a line of a named file.
type ParseError = deb.ParseError

// maxLine bounds one line of a one-line-style sources.list.
const maxLine = 1 << 20

func parseParagraphs(data []byte, file string, comments bool) ([]*deb.Paragraph, error) {
	var ps []*deb.Paragraph
	err := deb.ReadParagraphs(bytes.NewReader(data), file, comments, func(p *deb.Paragraph) error {
		ps = append(ps, p)
		return nil
	})
	return ps, err
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
