package config

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// decodeStrict decodes b into v refusing unknown keys, and returns the
// document's node tree so that later checks can name the line of what they
// refuse. Errors name the file.
func decodeStrict(name string, b []byte, v any) (*doc, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			// "line 3: field foo not found in type ..." -> file:3: ...
			return nil, fmt.Errorf("%s: %s", name, joinTypeErrors(name, te.Errors))
		}
		if err.Error() == "EOF" {
			return nil, fmt.Errorf("%s: empty document", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &doc{name: name, root: &root}, nil
}

func joinTypeErrors(name string, errs []string) string {
	var buf bytes.Buffer
	for i, e := range errs {
		if i > 0 {
			buf.WriteString("; ")
		}
		// yaml.v3 writes "line N: msg"; make it "name:N: msg".
		var n int
		var rest string
		if k, _ := fmt.Sscanf(e, "line %d:", &n); k == 1 {
			rest = e[len("line "+strconv.Itoa(n)+":"):]
			fmt.Fprintf(&buf, "%s:%d:%s", name, n, rest)
			continue
		}
		buf.WriteString(e)
	}
	return buf.String()
}

// doc is a parsed YAML file kept for its line numbers.
type doc struct {
	name string
	root *yaml.Node
}

// at returns "file:line" of the node at path (map keys as strings, list
// indexes as ints); where the path runs out, the deepest node found.
func (d *doc) at(path ...any) string {
	n := d.root
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, p := range path {
		if n == nil {
			break
		}
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	line := 1
	if n != nil && n.Line > 0 {
		line = n.Line
	}
	return fmt.Sprintf("%s:%d", d.name, line)
}

// errf is an error at the node at path.
func (d *doc) errf(path []any, format string, args ...any) error {
	return fmt.Errorf("%s: %s", d.at(path...), fmt.Sprintf(format, args...))
}

func p(path ...any) []any { return path }
