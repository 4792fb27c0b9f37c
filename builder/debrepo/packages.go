package debrepo

import (
	"encoding/hex"
	"fmt"
	"github.com/ingotfleet/ingot/builder/deb"
	"io"
	"strconv"
	"strings"

	"github.com/ingotfleet/ingot/builder/spec"
)

// Package is one paragraph of a Packages index: the fields resolution and
// download need. Relationship fields are kept as written and parsed by the
// resolver when it needs them.
type Package struct {
	Name         string
	Version      string
	Architecture string
	MultiArch    string // "", "same", "foreign", "allowed", "no"
	Essential    bool
	Important    bool // apt's Important: yes
	Priority     string
	Source       string
	PreDepends   string
	Depends      string
	Provides     string
	Conflicts    string
	Breaks       string
	Filename     string
	Size         int64
	SHA256       string

	Repository int // index of the repository suite it came from (set by the caller)
}

// ParsePackages reads a Packages index and calls fn for each package. A
// paragraph lacking Package, Version, Architecture, Filename, Size or
// SHA256, or with a malformed one, is an error naming file and line.
func ParsePackages(r io.Reader, file string, fn func(*Package) error) error {
	return deb.ReadParagraphs(r, file, false, func(p *deb.Paragraph) error {
		pkg, err := packageFrom(p)
		if err != nil {
			return &ParseError{File: file, Line: p.Line, Err: err}
		}
		return fn(pkg)
	})
}

func packageFrom(p *deb.Paragraph) (*Package, error) {
	pkg := &Package{}
	var size string
	for i := range p.Fields {
		f := deb.Field{Name: p.Fields[i].Name, Value: deb.Decode(p.Fields[i].Value)}
		switch strings.ToLower(f.Name) {
		case "package":
			pkg.Name = f.Value
		case "version":
			pkg.Version = f.Value
		case "architecture":
			pkg.Architecture = f.Value
		case "multi-arch":
			pkg.MultiArch = strings.ToLower(f.Value)
		case "essential":
			pkg.Essential = strings.EqualFold(f.Value, "yes")
		case "important":
			pkg.Important = strings.EqualFold(f.Value, "yes")
		case "priority":
			pkg.Priority = f.Value
		case "source":
			pkg.Source = f.Value
		case "pre-depends":
			pkg.PreDepends = oneLine(f.Value)
		case "depends":
			pkg.Depends = oneLine(f.Value)
		case "provides":
			pkg.Provides = oneLine(f.Value)
		case "conflicts":
			pkg.Conflicts = oneLine(f.Value)
		case "breaks":
			pkg.Breaks = oneLine(f.Value)
		case "filename":
			pkg.Filename = f.Value
		case "size":
			size = f.Value
		case "sha256":
			pkg.SHA256 = strings.ToLower(f.Value)
		}
	}
	switch {
	case pkg.Name == "":
		return nil, fmt.Errorf("paragraph without a Package field")
	case pkg.Version == "":
		return nil, fmt.Errorf("package %s: no Version", pkg.Name)
	case pkg.Architecture == "" || strings.ContainsAny(pkg.Architecture, " \t"):
		return nil, fmt.Errorf("package %s: Architecture %q", pkg.Name, pkg.Architecture)
	case !spec.SafeFilename(pkg.Filename):
		return nil, fmt.Errorf("package %s: Filename %q is not a safe relative path", pkg.Name, pkg.Filename)
	}
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("package %s: Size %q is not a size", pkg.Name, size)
	}
	pkg.Size = n
	if b, err := hex.DecodeString(pkg.SHA256); err != nil || len(b) != 32 {
		return nil, fmt.Errorf("package %s: SHA256 %q is not a sha256", pkg.Name, pkg.SHA256)
	}
	return pkg, nil
}

func oneLine(s string) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}
