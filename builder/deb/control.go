package deb

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Paragraph is one stanza of a control file: fields in file order. A
// value keeps its continuation lines ("\n" + the line as written, with its
// leading space) but not the space after the colon.
type Paragraph struct {
	Names  []string          // field names as written, in order
	Values map[string]string // by lower-cased name
}

// Get returns the value of a field (case-insensitive), "" when absent.
func (p *Paragraph) Get(name string) string { return p.Values[strings.ToLower(name)] }

// Has reports whether the field is present.
func (p *Paragraph) Has(name string) bool {
	_, ok := p.Values[strings.ToLower(name)]
	return ok
}

// Set adds or replaces a field; a new field goes at the end.
func (p *Paragraph) Set(name, value string) {
	k := strings.ToLower(name)
	if p.Values == nil {
		p.Values = map[string]string{}
	}
	if _, ok := p.Values[k]; !ok {
		p.Names = append(p.Names, name)
	}
	p.Values[k] = value
}

// Delete removes a field.
func (p *Paragraph) Delete(name string) {
	k := strings.ToLower(name)
	if _, ok := p.Values[k]; !ok {
		return
	}
	delete(p.Values, k)
	for i, n := range p.Names {
		if strings.ToLower(n) == k {
			p.Names = append(p.Names[:i:i], p.Names[i+1:]...)
			break
		}
	}
}

// WriteTo writes the paragraph in control-file syntax (without the
// blank line that separates paragraphs).
func (p *Paragraph) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	for _, n := range p.Names {
		v := p.Values[strings.ToLower(n)]
		b.WriteString(n)
		b.WriteByte(':')
		if v != "" && v[0] != '\n' {
			b.WriteByte(' ')
		}
		b.WriteString(v)
		b.WriteByte('\n')
	}
	return b.WriteTo(w)
}

// ParseParagraphs reads every paragraph of a control file (name is used in
// errors). Comment lines ("#") are skipped, as dpkg does in control files.
func ParseParagraphs(r io.Reader, name string) ([]*Paragraph, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var out []*Paragraph
	var cur *Paragraph
	var last string // lower-cased name of the field being continued
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSuffix(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(text) == "":
			cur, last = nil, ""
			continue
		case text[0] == '#':
			continue
		case text[0] == ' ' || text[0] == '\t':
			if cur == nil || last == "" {
				return nil, fmt.Errorf("%s:%d: continuation line outside a field", name, line)
			}
			cur.Values[last] += "\n" + text
			continue
		}
		k, v, ok := strings.Cut(text, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("%s:%d: expected \"Field: value\", got %q", name, line, clip(text))
		}
		if cur == nil {
			cur = &Paragraph{Values: map[string]string{}}
			out = append(out, cur)
		}
		lk := strings.ToLower(k)
		if _, dup := cur.Values[lk]; dup {
			return nil, fmt.Errorf("%s:%d: duplicate field %q", name, line, k)
		}
		cur.Names = append(cur.Names, k)
		cur.Values[lk] = strings.TrimLeft(v, " \t")
		last = lk
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return out, nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
