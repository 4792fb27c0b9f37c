package spec

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ingotfleet/ingot/internal/glob"
)

// Variants of the base package set.
const (
	// VariantMinbase is Essential: yes plus every Priority: required
	// package, and their dependencies (mmdebstrap --variant=minbase).
	VariantMinbase = "minbase"
	// VariantEssential is Essential: yes and dependencies only
	// (mmdebstrap --variant=essential).
	VariantEssential = "essential"
	// VariantImportant adds Priority: important to minbase
	// (mmdebstrap --variant=important, close to debootstrap's default).
	VariantImportant = "important"
	// VariantStandard adds Priority: standard to important
	// (mmdebstrap --variant=standard).
	VariantStandard = "standard"
)

// DefaultArchitecture is used when a spec names none.
const DefaultArchitecture = "amd64"

// Repository is one Debian repository: a base URL (the directory holding
// dists/ and pool/), suites, components, and the keyring that signs its
// InRelease files (binary .gpg or armored .asc; a relative path is taken
// relative to the spec file).
type Repository struct {
	URL        string   `yaml:"url" json:"url"`
	Suites     []string `yaml:"suites" json:"suites"`
	Components []string `yaml:"components" json:"components"`
	Keyring    string   `yaml:"keyring" json:"keyring"`
}

// Spec describes an image. Paths in it (Overlay, Keyring) are relative to
// Dir, the directory of the spec file.
type Spec struct {
	Name          string   `yaml:"name"`
	Architectures []string `yaml:"architectures"` // default [amd64]
	// Repositories to resolve against; empty means the build host's apt
	// sources with their Signed-By keyrings.
	Repositories []Repository `yaml:"repositories"`
	// Variant is the base set: "minbase" (default), "essential",
	// "important" or "standard".
	Variant  string   `yaml:"variant"`
	Packages []string `yaml:"packages"` // name, name:arch, or name=version to pin
	// Debs are local .deb files (such as ones `ingot pkg build` made),
	// relative to the spec's directory, installed with the packages;
	// their dependencies are resolved from the repositories.
	Debs []string `yaml:"debs"`
	// Exclude lists path globs (internal/glob's dialect, absolute, such
	// as /usr/share/doc/*) removed from the image; a glob ending in /*
	// removes the whole subtree. Keep re-includes paths an Exclude
	// matched (such as /usr/share/doc/*/copyright).
	Exclude []string `yaml:"exclude"`
	Keep    []string `yaml:"keep"`
	// Overlay is a directory copied over the image after install.
	Overlay string `yaml:"overlay"`
	// Customize commands run in the sandbox (sh -c) after install.
	Customize []string `yaml:"customize"`
	// SourceDateEpoch clamps every time in the image; nil means the
	// lock's (the newest Date of the locked Release files).
	SourceDateEpoch *int64 `yaml:"source-date-epoch"`

	Dir string `yaml:"-"` // directory of the spec file

	raw []byte // the file as read, for Digest
}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	archRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	pkgRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	pkgArchRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9][a-z0-9-]*)?$`)
	versionRE = regexp.MustCompile(`^[0-9A-Za-z.+~:-]+$`)
	suiteRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
	lineRE    = regexp.MustCompile(`^line (\d+): `)
)

// Load reads, strictly parses and validates the spec file at path. An
// unknown key, a wrong type or an invalid value is an error naming
// path:line.
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading spec: %w", err)
	}
	s, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("spec %s: %w", path, err)
	}
	s.Dir = abs
	for i, d := range s.Debs {
		fi, err := os.Stat(s.Path(d))
		if err == nil && !fi.Mode().IsRegular() {
			err = errors.New("not a regular file")
		}
		if err != nil {
			var root yaml.Node
			_ = yaml.Unmarshal(data, &root) // parsed once already: cannot fail
			return nil, fmt.Errorf("%s:%d: debs.%d: %s: %w", path, errLine(&root, fieldErr("", "debs", fmt.Sprint(i))), i, d, err)
		}
	}
	if s.Overlay != "" {
		fi, err := os.Stat(s.Path(s.Overlay))
		if err != nil {
			return nil, fmt.Errorf("%s: overlay: %w", path, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("%s: overlay %s is not a directory", path, s.Overlay)
		}
	}
	return s, nil
}

// Parse parses and validates spec text; name is used in errors. Dir is
// left empty.
func Parse(name string, data []byte) (*Spec, error) {
	var s Spec
	var root yaml.Node
	if err := strictDecode(name, data, &root, &s); err != nil {
		return nil, err
	}
	s.raw = bytes.Clone(data)
	s.applyDefaults()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, errLine(&root, err), err)
	}
	return &s, nil
}

// strictDecode decodes exactly one YAML document into v, refusing unknown
// keys, and keeps the node tree in root so that validation errors can be
// placed on a line.
func strictDecode(name string, data []byte, root *yaml.Node, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(root); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: empty file", name)
		}
		return fmt.Errorf("%s: %w", name, yamlErr(name, err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s:%d: more than one YAML document", name, extra.Line)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: the top level must be a mapping of keys", name, max(root.Line, 1))
	}
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return yamlErr(name, err)
	}
	return nil
}

// yamlErr rewrites yaml.v3's "line N: msg" errors as "name:N: msg".
func yamlErr(name string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			if sm := lineRE.FindStringSubmatch(m); sm != nil {
				msgs[i] = name + ":" + sm[1] + ": " + m[len(sm[0]):]
			} else {
				msgs[i] = name + ": " + m
			}
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if sm := lineRE.FindStringSubmatch(msg); sm != nil {
		return fmt.Errorf("%s:%s: %s", name, sm[1], msg[len(sm[0]):])
	}
	return fmt.Errorf("%s: %s", name, msg)
}

// fieldError is a validation error at a key path such as
// ["repositories", "1", "url"], so that Parse can name its line.
type fieldError struct {
	path []string
	msg  string
}

func (e *fieldError) Error() string { return strings.Join(e.path, ".") + ": " + e.msg }

func fieldErr(msg string, path ...string) error { return &fieldError{path: path, msg: msg} }

// errLine finds the line of the node a fieldError points at: the deepest
// node along its path that exists.
func errLine(root *yaml.Node, err error) int {
	var fe *fieldError
	n := root
	if len(n.Content) == 1 {
		n = n.Content[0]
	}
	line := n.Line
	if !errors.As(err, &fe) {
		return line
	}
	for _, p := range fe.path {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					next = n.Content[i+1]
					line = n.Content[i].Line
				}
			}
		case yaml.SequenceNode:
			var idx int
			if _, err := fmt.Sscan(p, &idx); err == nil && idx >= 0 && idx < len(n.Content) {
				next = n.Content[idx]
			}
		}
		if next == nil {
			break
		}
		n = next
		line = n.Line
	}
	return line
}

func (s *Spec) applyDefaults() {
	if len(s.Architectures) == 0 {
		s.Architectures = []string{DefaultArchitecture}
	}
	if s.Variant == "" {
		s.Variant = VariantMinbase
	}
	for i := range s.Repositories {
		if len(s.Repositories[i].Components) == 0 {
			s.Repositories[i].Components = []string{"main"}
		}
	}
}

// Validate checks every field. Defaults (architectures, variant,
// components) must have been applied: Load and Parse do that.
func (s *Spec) Validate() error {
	if !nameRE.MatchString(s.Name) {
		return fieldErr(fmt.Sprintf("%q is not a valid name (lower-case letters, digits, '.', '_', '-')", s.Name), "name")
	}
	if len(s.Architectures) == 0 {
		return fieldErr("at least one architecture is needed", "architectures")
	}
	seen := map[string]bool{}
	for i, a := range s.Architectures {
		if !archRE.MatchString(a) || a == "all" || a == "any" {
			return fieldErr(fmt.Sprintf("%q is not a Debian architecture", a), "architectures", fmt.Sprint(i))
		}
		if seen[a] {
			return fieldErr(fmt.Sprintf("architecture %q listed twice", a), "architectures", fmt.Sprint(i))
		}
		seen[a] = true
	}
	for i, r := range s.Repositories {
		at := func(k string) []string { return []string{"repositories", fmt.Sprint(i), k} }
		u, err := url.Parse(r.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Scheme != "file" && u.Host == "") {
			return fieldErr(fmt.Sprintf("%q is not an http, https or file URL", r.URL), at("url")...)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return fieldErr(fmt.Sprintf("%q: a repository URL has no query or fragment", r.URL), at("url")...)
		}
		if len(r.Suites) == 0 {
			return fieldErr("at least one suite is needed (such as bookworm)", at("suites")...)
		}
		for j, su := range r.Suites {
			if !suiteRE.MatchString(su) || strings.Contains(su, "..") {
				return fieldErr(fmt.Sprintf("%q is not a valid suite", su), "repositories", fmt.Sprint(i), "suites", fmt.Sprint(j))
			}
		}
		for j, c := range r.Components {
			if !suiteRE.MatchString(c) || strings.Contains(c, "..") {
				return fieldErr(fmt.Sprintf("%q is not a valid component", c), "repositories", fmt.Sprint(i), "components", fmt.Sprint(j))
			}
		}
		if r.Keyring == "" {
			return fieldErr("a keyring is needed to verify the repository's InRelease (such as /usr/share/keyrings/debian-archive-keyring.gpg)", at("keyring")...)
		}
	}
	switch s.Variant {
	case VariantMinbase, VariantEssential, VariantImportant, VariantStandard:
	default:
		return fieldErr(fmt.Sprintf("unknown variant %q (want minbase, essential, important or standard)", s.Variant), "variant")
	}
	pkgs := map[string]bool{}
	for i, p := range s.Packages {
		name, ver, pinned := strings.Cut(p, "=")
		if !pkgArchRE.MatchString(name) || (pinned && !versionRE.MatchString(ver)) {
			return fieldErr(fmt.Sprintf("%q is not a package name (name, name:arch, name=version)", p), "packages", fmt.Sprint(i))
		}
		if _, arch, ok := strings.Cut(name, ":"); ok && !slices.Contains(s.Architectures, arch) {
			return fieldErr(fmt.Sprintf("%q: architecture %s is not in architectures", p, arch), "packages", fmt.Sprint(i))
		}
		if pkgs[name] {
			return fieldErr(fmt.Sprintf("package %q listed twice", name), "packages", fmt.Sprint(i))
		}
		pkgs[name] = true
	}
	debs := map[string]bool{}
	for i, d := range s.Debs {
		if !strings.HasSuffix(d, ".deb") || strings.ContainsRune(d, 0) {
			return fieldErr(fmt.Sprintf("%q is not the path of a .deb file", d), "debs", fmt.Sprint(i))
		}
		if debs[d] {
			return fieldErr(fmt.Sprintf("%q listed twice", d), "debs", fmt.Sprint(i))
		}
		debs[d] = true
	}
	for _, list := range []struct {
		key   string
		globs []string
	}{{"exclude", s.Exclude}, {"keep", s.Keep}} {
		for i, g := range list.globs {
			if err := checkGlob(g); err != nil {
				return fieldErr(err.Error(), list.key, fmt.Sprint(i))
			}
		}
	}
	if strings.ContainsRune(s.Overlay, 0) {
		return fieldErr("overlay path contains a NUL byte", "overlay")
	}
	for i, c := range s.Customize {
		if strings.TrimSpace(c) == "" {
			return fieldErr("empty command", "customize", fmt.Sprint(i))
		}
		if strings.ContainsRune(c, 0) {
			return fieldErr("command contains a NUL byte", "customize", fmt.Sprint(i))
		}
	}
	if s.SourceDateEpoch != nil && *s.SourceDateEpoch < 0 {
		return fieldErr(fmt.Sprintf("%d is negative", *s.SourceDateEpoch), "source-date-epoch")
	}
	return nil
}

func checkGlob(g string) error {
	if !strings.HasPrefix(g, "/") {
		return fmt.Errorf("%q: a path glob starts with /", g)
	}
	if path.Clean(g) != g && path.Clean(g)+"/" != g {
		return fmt.Errorf("%q: not a clean path (no //, . or .. parts)", g)
	}
	if _, err := glob.Compile(g); err != nil {
		return err
	}
	return nil
}

// Path resolves p (the overlay, a keyring) against the spec's directory.
func (s *Spec) Path(p string) string {
	if p == "" || filepath.IsAbs(p) || s.Dir == "" {
		return p
	}
	return filepath.Join(s.Dir, p)
}

// Digest is the sha256 of the spec file as read: build provenance records it.
func (s *Spec) Digest() string {
	h := sha256.Sum256(s.raw)
	return hex.EncodeToString(h[:])
}

// ResolveDigest is the sha256 of what resolution depends on — the
// architectures, repositories, variant and packages, in a canonical form —
// and is what a Lock records as SpecSHA256. Editing excludes, the overlay
// or customize commands does not make a lock stale; changing the package
// set or the repositories does.
func (s *Spec) ResolveDigest() string {
	in := struct {
		Architectures []string     `json:"architectures"`
		Repositories  []Repository `json:"repositories"`
		Variant       string       `json:"variant"`
		Packages      []string     `json:"packages"`
		Debs          []string     `json:"debs,omitempty"`
	}{s.Architectures, s.Repositories, s.Variant, s.Packages, s.Debs}
	if in.Repositories == nil {
		in.Repositories = []Repository{}
	}
	if in.Packages == nil {
		in.Packages = []string{}
	}
	b, err := json.Marshal(in)
	if err != nil {
		panic(err) // plain strings and slices always marshal
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// PackageName splits a Packages entry into name (with its :arch, if any)
// and pinned version ("" if none).
func PackageName(p string) (name, version string) {
	name, version, _ = strings.Cut(p, "=")
	return name, version
}
