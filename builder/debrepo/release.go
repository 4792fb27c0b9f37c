package debrepo

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ingotfleet/ingot/builder/spec"
)

// FileHash is one line of a Release file's SHA256 field.
type FileHash struct {
	Path   string // below dists/SUITE/, such as main/binary-amd64/Packages.xz
	Size   int64
	SHA256 string
}

// Release is the verified paragraph of a suite's InRelease file.
type Release struct {
	Origin, Label, Suite, Codename, Version string
	Date                                    time.Time
	RawDate                                 string
	ValidUntil                              time.Time // zero if the field is absent
	Architectures                           []string
	Components                              []string
	AcquireByHash                           bool
	// NoArchAllPackages is set when Packages of architecture all are
	// listed in each architecture's index, not in binary-all.
	NoArchAllPackages bool
	// NotAutomatic marks suites (backports, experimental) whose packages
	// are taken only when asked for by version.
	NotAutomatic bool
	Files        map[string]FileHash
}

// ParseRelease parses a Release file's text (the signed body of
// InRelease); file names it in errors.
func ParseRelease(data []byte, file string) (*Release, error) {
	ps, err := parseParagraphs(data, file, false)
	if err != nil {
		return nil, err
	}
	if len(ps) != 1 {
		return nil, &ParseError{File: file, Err: fmt.Errorf("want one paragraph, found %d", len(ps))}
	}
	p := ps[0]
	errAt := func(field, format string, args ...any) error {
		return &ParseError{File: file, Line: p.FieldLine(field), Err: fmt.Errorf(field+": "+format, args...)}
	}
	// hashErr places an error on a line of the SHA256 field (the field's
	// value starts on the line after its name).
	hashErr := func(i int, format string, args ...any) error {
		return &ParseError{File: file, Line: p.FieldLine("SHA256") + i, Err: fmt.Errorf("SHA256: "+format, args...)}
	}
	r := &Release{
		Origin:            p.Text("Origin"),
		Label:             p.Text("Label"),
		Suite:             p.Text("Suite"),
		Codename:          p.Text("Codename"),
		Version:           p.Text("Version"),
		RawDate:           p.Text("Date"),
		Architectures:     strings.Fields(p.Text("Architectures")),
		Components:        strings.Fields(p.Text("Components")),
		AcquireByHash:     strings.EqualFold(p.Text("Acquire-By-Hash"), "yes"),
		NoArchAllPackages: strings.EqualFold(p.Text("No-Support-for-Architecture-all"), "Packages"),
		NotAutomatic:      strings.EqualFold(p.Text("NotAutomatic"), "yes"),
		Files:             map[string]FileHash{},
	}
	if r.RawDate == "" {
		return nil, errAt("Date", "missing")
	}
	if r.Date, err = spec.ParseReleaseDate(r.RawDate); err != nil {
		return nil, errAt("Date", "%v", err)
	}
	if vu := p.Text("Valid-Until"); vu != "" {
		if r.ValidUntil, err = spec.ParseReleaseDate(vu); err != nil {
			return nil, errAt("Valid-Until", "%v", err)
		}
	}
	if !p.Has("SHA256") {
		return nil, errAt("SHA256", "missing: the Release file lists no sha256 hashes")
	}
	for i, line := range strings.Split(p.Text("SHA256"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, hashErr(i+1, "want \"hash size path\", got %q", truncate(line))
		}
		if b, err := hex.DecodeString(f[0]); err != nil || len(b) != 32 {
			return nil, hashErr(i+1, "%q is not a sha256", truncate(f[0]))
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || size < 0 {
			return nil, hashErr(i+1, "%q is not a size", truncate(f[1]))
		}
		if !spec.SafeFilename(f[2]) {
			return nil, hashErr(i+1, "%q is not a safe relative path", truncate(f[2]))
		}
		r.Files[f[2]] = FileHash{Path: f[2], Size: size, SHA256: strings.ToLower(f[0])}
	}
	return r, nil
}

// ErrExpired is returned (wrapped) for a Release file past its Valid-Until.
var ErrExpired = errors.New("Release file expired")

// CheckValid refuses a Release whose Valid-Until is before now.
func (r *Release) CheckValid(now time.Time) error {
	if !r.ValidUntil.IsZero() && now.After(r.ValidUntil) {
		return fmt.Errorf("%w: Valid-Until %s is past", ErrExpired, r.ValidUntil.Format(time.RFC1123))
	}
	return nil
}
