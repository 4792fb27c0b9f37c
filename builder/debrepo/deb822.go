package debrepo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxLine bounds one line of a control file; Debian's longest lines (a
// Description, a list of Provides) stay far below.
const maxLine = 1 << 20

// Field is one field of a deb822 paragraph. A multi-line value keeps its
// lines joined with "\n", leading space of continuation lines removed and
// a lone "." standing for an empty line.
type Field struct {
	Name  string
	Value string
	Line  int
}

// Paragraph is one stanza of a deb822 file (Packages, Release, .sources).
type Paragraph struct {
	Line   int // line of the first field
	Fields []Field
}

// Get returns the value of the field called name (compared without
// regard to case), or "".
func (p *Paragraph) Get(name string) string {
	for i := range p.Fields {
		if strings.EqualFold(p.Fields[i].Name, name) {
			return p.Fields[i].Value
		}
	}
	return ""
}

// Has reports whether the paragraph has the field called name.
func (p *Paragraph) Has(name string) bool {
	for i := range p.Fields {
		if strings.EqualFold(p.Fields[i].Name, name) {
			return true
		}
	}
	return false
}

// ParseError is a syntax or content error at a line of a named file.
type ParseError struct {
	File string
	Line int
	Err  error
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// ReadParagraphs reads a deb822 file and calls fn for each paragraph in
// order. Lines starting with '#' are comments when allowComments is set
// (apt's .sources files); Packages and Release files have none. A field
// name may appear once per paragraph. Errors from fn are returned as they
// are; syntax errors are *ParseError naming file and line.
func ReadParagraphs(r io.Reader, file string, allowComments bool, fn func(*Paragraph) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		para   Paragraph
		lineNo int
		cont   []string // continuation lines of the last field
	)
	errAt := func(line int, format string, args ...any) error {
		return &ParseError{File: file, Line: line, Err: fmt.Errorf(format, args...)}
	}
	flushField := func() {
		if len(cont) > 0 {
			f := &para.Fields[len(para.Fields)-1]
			if f.Value != "" {
				f.Value += "\n"
			}
			f.Value += strings.Join(cont, "\n")
			cont = cont[:0]
		}
	}
	flush := func() error {
		flushField()
		if len(para.Fields) == 0 {
			return nil
		}
		p := para
		para = Paragraph{Fields: make([]Field, 0, len(p.Fields))}
		return fn(&p)
	}
	for {
		raw, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return &ParseError{File: file, Line: lineNo + 1, Err: err}
		}
		if raw == nil && errors.Is(err, io.EOF) {
			break
		}
		lineNo++
		line := strings.TrimRight(string(raw), " \t\r")
		switch {
		case allowComments && strings.HasPrefix(line, "#"):
			// A comment; it neither ends a paragraph nor continues a field.
		case line == "":
			if e := flush(); e != nil {
				return e
			}
		case line[0] == ' ' || line[0] == '\t':
			if len(para.Fields) == 0 {
				return errAt(lineNo, "continuation line without a field")
			}
			c := strings.TrimLeft(line, " \t")
			if c == "." {
				c = ""
			}
			cont = append(cont, c)
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				return errAt(lineNo, "%q is not a field (want Name: value)", truncate(line))
			}
			if name == "" || strings.ContainsAny(name, " \t") || name[0] == '-' {
				return errAt(lineNo, "%q is not a field name", truncate(name))
			}
			for _, c := range []byte(name) {
				if c < 0x21 || c > 0x7e {
					return errAt(lineNo, "%q is not a field name", truncate(name))
				}
			}
			flushField()
			if len(para.Fields) == 0 {
				para.Line = lineNo
			}
			for i := range para.Fields {
				if strings.EqualFold(para.Fields[i].Name, name) {
					return errAt(lineNo, "field %s repeated (first on line %d)", name, para.Fields[i].Line)
				}
			}
			para.Fields = append(para.Fields, Field{Name: name, Value: strings.TrimSpace(value), Line: lineNo})
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	return flush()
}

// readLine returns the next line without its "\n". At the end it returns
// the last unterminated line (if any) with io.EOF.
func readLine(br *bufio.Reader) ([]byte, error) {
	var long []byte
	for {
		frag, err := br.ReadSlice('\n')
		if err == nil {
			frag = frag[:len(frag)-1]
			if long != nil {
				return append(long, frag...), nil
			}
			return frag, nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, frag...)
			if len(long) > maxLine {
				return nil, fmt.Errorf("line longer than %d bytes", maxLine)
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(frag) == 0 && long == nil {
				return nil, io.EOF
			}
			return append(long, frag...), io.EOF
		}
		return nil, err
	}
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// ParseParagraphs reads every paragraph of data.
func ParseParagraphs(data []byte, file string, allowComments bool) ([]*Paragraph, error) {
	var ps []*Paragraph
	err := ReadParagraphs(bytes.NewReader(data), file, allowComments, func(p *Paragraph) error {
		ps = append(ps, p)
		return nil
	})
	return ps, err
}
