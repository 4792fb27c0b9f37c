package deb

import (
	"fmt"
	"strings"

	"pault.ag/go/debian/version"
)

// Possibility is one alternative of a relation: name[:qualifier] [(op version)].
type Possibility struct {
	Name      string
	Qualifier string // "", "any", "native" or an architecture
	Op        string // "", "<<", "<=", "=", ">=", ">>"
	Version   string
	ver       version.Version
}

// Relation is a list of alternatives, any one of which satisfies it.
type Relation []Possibility

func (p Possibility) String() string {
	s := p.Name
	if p.Qualifier != "" {
		s += ":" + p.Qualifier
	}
	if p.Op != "" {
		s += " (" + p.Op + " " + p.Version + ")"
	}
	return s
}

func (r Relation) String() string {
	parts := make([]string, len(r))
	for i, p := range r {
		parts[i] = p.String()
	}
	return strings.Join(parts, " | ")
}

// ParseRelations parses a binary package's relationship field (Depends,
// Pre-Depends, Conflicts, Breaks, Provides, Replaces): the project's one
// parser of them, used by the resolver, the builder's unpack order and
// its file-conflict rule. It stays hand-written rather than
// pault.ag/go/debian/dependency because that one accepts the source-only
// syntax (architecture restrictions, build profiles) that a binary field
// must not carry, and keeps no version already parsed for comparison. Architecture restrictions
// ([amd64]) and build profiles (<!nocheck>) belong to source packages
// and are refused here.
func ParseRelations(field string) ([]Relation, error) {
	var out []Relation
	if strings.TrimSpace(field) == "" {
		return nil, nil
	}
	for _, item := range strings.Split(field, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("empty item in %q", field)
		}
		var rel Relation
		for _, alt := range strings.Split(item, "|") {
			p, err := parsePossibility(strings.TrimSpace(alt))
			if err != nil {
				return nil, err
			}
			rel = append(rel, p)
		}
		out = append(out, rel)
	}
	return out, nil
}

var ops = []string{"<<", "<=", ">=", ">>", "=", "<", ">"}

func parsePossibility(s string) (Possibility, error) {
	var p Possibility
	name, rest, _ := strings.Cut(s, "(")
	name = strings.TrimSpace(name)
	if rest != "" || strings.Contains(s, "(") {
		inner, tail, ok := strings.Cut(rest, ")")
		if !ok || strings.TrimSpace(tail) != "" {
			return p, fmt.Errorf("%q: want name (op version)", s)
		}
		inner = strings.TrimSpace(inner)
		for _, op := range ops {
			if strings.HasPrefix(inner, op) {
				p.Op = op
				p.Version = strings.TrimSpace(inner[len(op):])
				break
			}
		}
		switch p.Op {
		case "":
			return p, fmt.Errorf("%q: no version operator", s)
		case "<": // obsolete spellings, as dpkg reads them
			p.Op = "<="
		case ">":
			p.Op = ">="
		}
		v, err := version.Parse(p.Version)
		if err != nil || p.Version == "" || strings.ContainsAny(p.Version, " \t") {
			return p, fmt.Errorf("%q: bad version %q", s, p.Version)
		}
		p.ver = v
	}
	if strings.ContainsAny(name, " \t[]<>") {
		return p, fmt.Errorf("%q: unexpected text after the package name", s)
	}
	p.Name, p.Qualifier, _ = strings.Cut(name, ":")
	if !validPackageName(p.Name) {
		return p, fmt.Errorf("%q: %q is not a package name", s, p.Name)
	}
	if strings.Contains(name, ":") && p.Qualifier == "" {
		return p, fmt.Errorf("%q: empty architecture qualifier", s)
	}
	return p, nil
}

func validPackageName(n string) bool {
	if len(n) < 1 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.' || c >= 'A' && c <= 'Z' || c == '_') {
			return false
		}
	}
	return true
}

// ParsedVersion is the constraint's version, parsed (zero without one).
func (p Possibility) ParsedVersion() version.Version { return p.ver }

// SatisfiedBy reports whether version v meets p's constraint.
func (p Possibility) SatisfiedBy(v version.Version) bool {
	if p.Op == "" {
		return true
	}
	c := version.Compare(v, p.ver)
	switch p.Op {
	case "<<":
		return c < 0
	case "<=":
		return c <= 0
	case "=":
		return c == 0
	case ">=":
		return c >= 0
	case ">>":
		return c > 0
	}
	return false
}
