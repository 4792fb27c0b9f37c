package rpm2deb

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/ingotfleet/ingot/builder/rpm"
	"github.com/ingotfleet/ingot/builder/rpm2deb/debmap"
)

// Dep is one RPM dependency as the header holds it.
type Dep struct {
	Name    string
	Flags   uint32
	Version string // [epoch:]version[-release], "" when unversioned
}

// String is the dependency as rpm prints it ("bash >= 5.0").
func (d Dep) String() string {
	if d.Version == "" || d.Flags&(rpm.SenseLess|rpm.SenseGreater|rpm.SenseEqual) == 0 {
		return d.Name
	}
	return d.Name + " " + rpmOp(d.Flags) + " " + d.Version
}

func rpmOp(f uint32) string {
	switch f & (rpm.SenseLess | rpm.SenseGreater | rpm.SenseEqual) {
	case rpm.SenseLess:
		return "<"
	case rpm.SenseGreater:
		return ">"
	case rpm.SenseEqual:
		return "="
	case rpm.SenseLess | rpm.SenseEqual:
		return "<="
	case rpm.SenseGreater | rpm.SenseEqual:
		return ">="
	}
	return "?"
}

func readDeps(p *rpm.Package, nameTag, flagsTag, versionTag int) ([]Dep, error) {
	names := p.Strings(nameTag)
	flags := p.Ints(flagsTag)
	vers := p.Strings(versionTag)
	if len(names) == 0 {
		return nil, nil
	}
	if (flags != nil && len(flags) != len(names)) || (vers != nil && len(vers) != len(names)) {
		return nil, fmt.Errorf("%w: tag %d: %d names but %d flags and %d versions", rpm.ErrBadRPM, nameTag, len(names), len(flags), len(vers))
	}
	out := make([]Dep, len(names))
	for i, n := range names {
		out[i].Name = n
		if flags != nil {
			out[i].Flags = uint32(flags[i])
		}
		if vers != nil {
			out[i].Version = vers[i]
		}
	}
	return out, nil
}

// Resolver answers, from a target system's dpkg database, which Debian
// package provides a path or a shared library.
type Resolver interface {
	// FileOwner returns the dependency that provides path (absolute), or
	// "" when no package in the target has it.
	FileOwner(path string) (string, error)
	// Soname returns the dependency for a shared library soname
	// ("libc.so.6"), given the symbol versions the RPM asks of it
	// ("GLIBC_2.34") and whether it is a 64-bit library; "" when no
	// package in the target has it.
	Soname(soname string, versions []string, bits64 bool) (string, error)
	// Essential reports whether pkg is Essential in the target: Debian
	// packages never depend on those without a version.
	Essential(pkg string) bool
}

// sonameRE matches rpm's automatic library dependencies:
// "libc.so.6()(64bit)", "libc.so.6(GLIBC_2.34)(64bit)", "libfoo.so.1()".
var sonameRE = regexp.MustCompile(`^([^()\s]+\.so[^()\s]*)\(([^()]*)\)(\(64bit\))?$`)

// debRelation is one Debian relation: a package and an optional
// constraint, or an already formatted string.
type debRelation struct {
	Name string
	Op   string // "", "<<", "<=", "=", ">=", ">>"
	Ver  string
}

func (r debRelation) String() string {
	if r.Op == "" {
		return r.Name
	}
	return fmt.Sprintf("%s (%s %s)", r.Name, r.Op, r.Ver)
}

// afterRelease is appended to an upstream version V to make the smallest
// string that dpkg orders after every V-R (any Debian revision R) and
// before every V with anything appended: "A" is the lowest character
// dpkg places after the end of a version, and "~" sorts before the end.
const afterRelease = "A~"

// mapVersioned turns an RPM relation into Debian relations. kind is
// "Depends", "Provides" etc., for notes.
func mapVersioned(name string, d Dep) ([]debRelation, []string) {
	if d.Version == "" || d.Flags&(rpm.SenseLess|rpm.SenseGreater|rpm.SenseEqual) == 0 {
		return []debRelation{{Name: name}}, nil
	}
	ep, hasEp, ver, rel := debmap.SplitEVR(d.Version)
	v, notes := debmap.DebVersion(ep, hasEp, ver, rel)
	op := rpmOp(d.Flags)
	if rel != "" {
		dop := map[string]string{"<": "<<", ">": ">>", "=": "=", "<=": "<=", ">=": ">="}[op]
		return []debRelation{{name, dop, v}}, notes
	}
	// rpm ignores the release when the relation has none: "= 1.2" is
	// any 1.2-R, "<= 1.2" includes 1.2-5, "> 1.2" excludes it.
	switch op {
	case "=":
		notes = append(notes, fmt.Sprintf("%s: '= %s' without a release became the range >= %s, << %s%s", d.Name, d.Version, v, v, afterRelease))
		return []debRelation{{name, ">=", v}, {name, "<<", v + afterRelease}}, notes
	case "<=":
		return []debRelation{{name, "<<", v + afterRelease}}, notes
	case ">":
		return []debRelation{{name, ">>", v + afterRelease}}, notes
	case "<":
		return []debRelation{{name, "<<", v}}, notes
	case ">=":
		return []debRelation{{name, ">=", v}}, notes
	}
	return []debRelation{{Name: name}}, notes
}

// relationSet collects relations for one control field, deduplicated,
// in first-seen order.
type relationSet struct {
	list []string
	seen map[string]bool
}

func (s *relationSet) add(r ...string) {
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	for _, x := range r {
		if !s.seen[x] {
			s.seen[x] = true
			s.list = append(s.list, x)
		}
	}
}

func (s *relationSet) String() string { return strings.Join(s.list, ", ") }

// classifyDep says what kind of RPM dependency name is: "rpmlib",
// "config", "file", "rich" (boolean), "soname", "virtual" (any other name with
// parentheses: perl(Foo), pkgconfig(x), rtld(GNU_HASH)) or "package".
func classifyDep(name string) string {
	switch {
	case strings.HasPrefix(name, "rpmlib("):
		return "rpmlib"
	case strings.HasPrefix(name, "config("):
		return "config"
	case strings.HasPrefix(name, "/"):
		return "file"
	case strings.HasPrefix(name, "("):
		return "rich"
	case sonameRE.MatchString(name):
		return "soname"
	case strings.ContainsAny(name, "()"):
		return "virtual"
	}
	return "package"
}

// sonameGroup gathers rpm's several requirements on one library
// (libc.so.6(), libc.so.6(GLIBC_2.34), …) into one question.
type sonameGroup struct {
	Soname   string
	Bits64   bool
	Versions []string
	Deps     []string // the RPM names, for the report
}

func groupSonames(deps []Dep) []*sonameGroup {
	by := map[string]*sonameGroup{}
	var order []string
	for _, d := range deps {
		m := sonameRE.FindStringSubmatch(d.Name)
		if m == nil {
			continue
		}
		key := m[1] + m[3]
		g := by[key]
		if g == nil {
			g = &sonameGroup{Soname: m[1], Bits64: m[3] != ""}
			by[key] = g
			order = append(order, key)
		}
		if m[2] != "" {
			g.Versions = append(g.Versions, m[2])
		}
		g.Deps = append(g.Deps, d.Name)
	}
	sort.Strings(order)
	out := make([]*sonameGroup, len(order))
	for i, k := range order {
		out[i] = by[k]
	}
	return out
}

// parseRich reads a flat rich (boolean) dependency of one operator,
// "(a or b >= 2 or c)" or "(a and b)", into its terms. Nested
// expressions and the conditional operators (if, unless, with, without)
// are not flat: ok is false.
func parseRich(s string) (op string, terms []Dep, ok bool) {
	if !strings.HasPrefix(s, "(") || !strings.HasSuffix(s, ")") {
		return "", nil, false
	}
	inner := strings.TrimSpace(s[1 : len(s)-1])
	if strings.ContainsAny(inner, "()") {
		return "", nil, false
	}
	f := strings.Fields(inner)
	var cur []string
	flush := func() bool {
		switch len(cur) {
		case 1:
			terms = append(terms, Dep{Name: cur[0]})
		case 3:
			flags, ok := map[string]uint32{"<": rpm.SenseLess, ">": rpm.SenseGreater, "=": rpm.SenseEqual, "==": rpm.SenseEqual,
				"<=": rpm.SenseLess | rpm.SenseEqual, ">=": rpm.SenseGreater | rpm.SenseEqual}[cur[1]]
			if !ok {
				return false
			}
			terms = append(terms, Dep{Name: cur[0], Flags: flags, Version: cur[2]})
		default:
			return false
		}
		cur = nil
		return true
	}
	for _, w := range f {
		switch w {
		case "or", "and":
			if op != "" && op != w {
				return "", nil, false
			}
			op = w
			if !flush() {
				return "", nil, false
			}
		case "if", "unless", "with", "without", "else":
			return "", nil, false
		default:
			cur = append(cur, w)
		}
	}
	if !flush() || op == "" {
		return "", nil, false
	}
	return op, terms, true
}
