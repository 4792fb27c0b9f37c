package deb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// This is the project's one reader of deb822 text (control files, dpkg's
// status, Packages, Release, apt .sources). It stays hand-written rather
// than pault.ag/go/debian/control because callers need what that package
// does not give: the line of every field (errors name file:line), the
// value exactly as written (the status file the builder writes must carry
// a control file's continuation lines byte for byte, or image digests
// change), and a bound on line length for hostile input. (Its control
// package also needs a module, pault.ag/go/topsort, that nothing else
// here uses.) BenchmarkParsePackages in builder/debrepo measures it.

// MaxLine bounds one line of deb822 text. Debian's longest lines (a
// Provides list, a Description) stay far below.
const MaxLine = 16 << 20

// Field is one field of a paragraph. Value is as written: the text after
// the colon with leading blanks removed, then for each continuation line
// "\n" and the line with its leading blank (a trailing "\r" dropped).
// Text gives the decoded form.
type Field struct {
	Name  string
	Value string
	Line  int // line of the field name, from 1
}

// Paragraph is one stanza of deb822 text: fields in file order. Field
// names compare without regard to case and appear once.
type Paragraph struct {
	Line   int // line of the first field
	Fields []Field
}

func (p *Paragraph) index(name string) int {
	for i := range p.Fields {
		if strings.EqualFold(p.Fields[i].Name, name) {
			return i
		}
	}
	return -1
}

// Get returns the value of a field as written (see Field), "" when absent.
func (p *Paragraph) Get(name string) string {
	if i := p.index(name); i >= 0 {
		return p.Fields[i].Value
	}
	return ""
}

// Text returns the value of a field decoded as deb822 says: lines joined
// with "\n", blanks around each line removed, a lone "." standing for an
// empty line, and no leading empty line when the first line is empty
// ("SHA256:\n a\n b" gives "a\nb"). "" when absent.
func (p *Paragraph) Text(name string) string {
	return Decode(p.Get(name))
}

// Decode turns a value as written into its decoded form (see Text).
func Decode(raw string) string {
	first, rest, multi := strings.Cut(raw, "\n")
	first = strings.TrimSpace(first)
	if !multi {
		return first
	}
	lines := strings.Split(rest, "\n")
	for i, l := range lines {
		l = strings.Trim(l, " \t\r")
		if l == "." {
			l = ""
		}
		lines[i] = l
	}
	if first == "" {
		return strings.Join(lines, "\n")
	}
	return first + "\n" + strings.Join(lines, "\n")
}

// FieldLine returns the line of a field, or the paragraph's line when
// the field is absent.
func (p *Paragraph) FieldLine(name string) int {
	if i := p.index(name); i >= 0 {
		return p.Fields[i].Line
	}
	return p.Line
}

// Has reports whether the field is present.
func (p *Paragraph) Has(name string) bool { return p.index(name) >= 0 }

// Names returns the field names as written, in order.
func (p *Paragraph) Names() []string {
	out := make([]string, len(p.Fields))
	for i := range p.Fields {
		out[i] = p.Fields[i].Name
	}
	return out
}

// Set adds or replaces a field (value as written); a new field goes at
// the end.
func (p *Paragraph) Set(name, value string) {
	if i := p.index(name); i >= 0 {
		p.Fields[i].Value = value
		return
	}
	p.Fields = append(p.Fields, Field{Name: name, Value: value})
}

// Delete removes a field.
func (p *Paragraph) Delete(name string) {
	if i := p.index(name); i >= 0 {
		p.Fields = append(p.Fields[:i:i], p.Fields[i+1:]...)
	}
}

// WriteTo writes the paragraph in control-file syntax (without the
// blank line that separates paragraphs).
func (p *Paragraph) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	for _, f := range p.Fields {
		b.WriteString(f.Name)
		b.WriteByte(':')
		if f.Value != "" && f.Value[0] != '\n' {
			b.WriteByte(' ')
		}
		b.WriteString(f.Value)
		b.WriteByte('\n')
	}
	return b.WriteTo(w)
}

// ParseError is a syntax or content error at a line of a named file.
type ParseError struct {
	File string
	Line int // 0 when the error is about the whole file
	Err  error
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// NotFieldError is the syntax error of a line that is neither a field, a
// continuation nor a separator.
type NotFieldError struct {
	Text string // the line, shortened
}

func (e *NotFieldError) Error() string {
	return fmt.Sprintf("%q is not a field (want \"Field: value\")", e.Text)
}

// ReadParagraphs reads deb822 text and calls fn for each paragraph in
// order. Lines starting with '#' are comments when comments is set
// (control files, dpkg's status, apt's .sources); Packages and Release
// files have none. Errors from fn are returned as they are; syntax errors
// are *ParseError naming file and line.
func ReadParagraphs(r io.Reader, file string, comments bool, fn func(*Paragraph) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var para Paragraph
	lineNo := 0
	errAt := func(line int, format string, args ...any) error {
		return &ParseError{File: file, Line: line, Err: fmt.Errorf(format, args...)}
	}
	flush := func() error {
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
		line := strings.TrimSuffix(string(raw), "\r")
		switch {
		case strings.TrimSpace(line) == "":
			if e := flush(); e != nil {
				return e
			}
		case comments && line[0] == '#':
			// A comment neither ends a paragraph nor continues a field.
		case line[0] == ' ' || line[0] == '\t':
			if len(para.Fields) == 0 {
				return errAt(lineNo, "continuation line without a field")
			}
			para.Fields[len(para.Fields)-1].Value += "\n" + line
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				return &ParseError{File: file, Line: lineNo, Err: &NotFieldError{Text: truncate(line)}}
			}
			if !validFieldName(name) {
				return errAt(lineNo, "%q is not a field name", truncate(name))
			}
			if i := para.index(name); i >= 0 {
				return errAt(lineNo, "field %s repeated (first on line %d)", name, para.Fields[i].Line)
			}
			if len(para.Fields) == 0 {
				para.Line = lineNo
			}
			para.Fields = append(para.Fields, Field{Name: name, Value: strings.TrimLeft(value, " \t"), Line: lineNo})
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	return flush()
}

// validFieldName: printable ASCII without blanks or colon, not starting with
// '-' (deb822(5)).
func validFieldName(name string) bool {
	if name == "" || name[0] == '-' {
		return false
	}
	for _, c := range []byte(name) {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// ParseParagraphs reads every paragraph of a control file or dpkg status
// file (name is used in errors). Comment lines ("#") are skipped, as dpkg
// does.
func ParseParagraphs(r io.Reader, name string) ([]*Paragraph, error) {
	var ps []*Paragraph
	err := ReadParagraphs(r, name, true, func(p *Paragraph) error {
		ps = append(ps, p)
		return nil
	})
	return ps, err
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
			if len(long) > MaxLine {
				return nil, fmt.Errorf("line longer than %d bytes", MaxLine)
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
