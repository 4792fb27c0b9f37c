package spec

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// LockVersion is the lock file format version Write produces and
// LoadLock accepts.
const LockVersion = 1

// LockedRepository is one suite of a repository as it was when locked.
type LockedRepository struct {
	URL        string   `yaml:"url"`
	Suite      string   `yaml:"suite"`
	Components []string `yaml:"components,flow"`
	// InReleaseSHA256 is the sha256 of the InRelease file verified at
	// lock time.
	InReleaseSHA256 string `yaml:"inrelease-sha256"`
	// Date is the Release file's Date field (RFC 1123, UTC).
	Date string `yaml:"date"`
}

// LockedPackage is one binary package to install.
type LockedPackage struct {
	Name         string `yaml:"name"`
	Version      string `yaml:"version"`
	Architecture string `yaml:"architecture"`
	Repository   int    `yaml:"repository"` // index into Lock.Repositories
	Filename     string `yaml:"filename"`   // path of the .deb below the repository URL
	Size         int64  `yaml:"size"`
	SHA256       string `yaml:"sha256"`
	Essential    bool   `yaml:"essential,omitempty"`
	Priority     string `yaml:"priority,omitempty"`
	// Local is the path of a .deb the spec names (Spec.Debs, as
	// written there); such a package has Repository -1 and no Filename.
	Local string `yaml:"local,omitempty"`
}

// Lock pins a resolved Spec.
type Lock struct {
	Version int `yaml:"version"`
	// SpecSHA256 is the Spec's ResolveDigest when it was locked.
	SpecSHA256 string `yaml:"spec-sha256"`
	// SourceDateEpoch is the newest Date of the locked Release files,
	// the default time of a build.
	SourceDateEpoch int64              `yaml:"source-date-epoch"`
	Repositories    []LockedRepository `yaml:"repositories"`
	Packages        []LockedPackage    `yaml:"packages"`
}

var (
	hexRE      = regexp.MustCompile(`^[0-9a-f]{64}$`)
	filenameRE = regexp.MustCompile(`^[A-Za-z0-9+._~%-][A-Za-z0-9+._~%/-]*$`)
)

// LoadLock reads, strictly parses and validates a lock file.
func LoadLock(path string) (*Lock, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading lock: %w", err)
	}
	return ParseLock(path, data)
}

// ParseLock parses and validates lock text; name is used in errors.
func ParseLock(name string, data []byte) (*Lock, error) {
	var l Lock
	var root yaml.Node
	if err := strictDecode(name, data, &root, &l); err != nil {
		return nil, err
	}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, errLine(&root, err), err)
	}
	return &l, nil
}

// Validate checks the lock: known version, well-formed digests, safe
// repository paths, repository indexes in range, packages sorted by name
// and architecture without duplicates.
func (l *Lock) Validate() error {
	if l.Version != LockVersion {
		return fieldErr(fmt.Sprintf("lock version %d is not supported (want %d)", l.Version, LockVersion), "version")
	}
	if !hexRE.MatchString(l.SpecSHA256) {
		return fieldErr("not a sha256 (64 lower-case hex digits)", "spec-sha256")
	}
	if l.SourceDateEpoch < 0 {
		return fieldErr("negative", "source-date-epoch")
	}
	for i, r := range l.Repositories {
		at := func(k string) []string { return []string{"repositories", fmt.Sprint(i), k} }
		if r.URL == "" || strings.ContainsAny(r.URL, " \t\n\x00") {
			return fieldErr(fmt.Sprintf("%q is not a URL", r.URL), at("url")...)
		}
		if !suiteRE.MatchString(r.Suite) || strings.Contains(r.Suite, "..") {
			return fieldErr(fmt.Sprintf("%q is not a suite", r.Suite), at("suite")...)
		}
		for _, c := range r.Components {
			if !suiteRE.MatchString(c) || strings.Contains(c, "..") {
				return fieldErr(fmt.Sprintf("%q is not a component", c), at("components")...)
			}
		}
		if !hexRE.MatchString(r.InReleaseSHA256) {
			return fieldErr("not a sha256 (64 lower-case hex digits)", at("inrelease-sha256")...)
		}
		if r.Date != "" {
			if _, err := ParseReleaseDate(r.Date); err != nil {
				return fieldErr(err.Error(), at("date")...)
			}
		}
	}
	for i, p := range l.Packages {
		at := func(k string) []string { return []string{"packages", fmt.Sprint(i), k} }
		if !pkgRE.MatchString(p.Name) {
			return fieldErr(fmt.Sprintf("%q is not a package name", p.Name), at("name")...)
		}
		if !versionRE.MatchString(p.Version) {
			return fieldErr(fmt.Sprintf("%q is not a version", p.Version), at("version")...)
		}
		if !archRE.MatchString(p.Architecture) {
			return fieldErr(fmt.Sprintf("%q is not an architecture", p.Architecture), at("architecture")...)
		}
		switch {
		case p.Local != "":
			if p.Repository != -1 || p.Filename != "" || !strings.HasSuffix(p.Local, ".deb") || strings.ContainsRune(p.Local, 0) {
				return fieldErr(fmt.Sprintf("local package %q: want repository -1, no filename and a .deb path", p.Local), at("local")...)
			}
		case p.Repository < 0 || p.Repository >= len(l.Repositories):
			return fieldErr(fmt.Sprintf("repository %d does not exist (the lock has %d)", p.Repository, len(l.Repositories)), at("repository")...)
		case !SafeFilename(p.Filename):
			return fieldErr(fmt.Sprintf("%q is not a safe relative path", p.Filename), at("filename")...)
		}
		if p.Size < 0 {
			return fieldErr("negative size", at("size")...)
		}
		if !hexRE.MatchString(p.SHA256) {
			return fieldErr("not a sha256 (64 lower-case hex digits)", at("sha256")...)
		}
		if strings.ContainsAny(p.Priority, " \t\n\x00") {
			return fieldErr(fmt.Sprintf("%q is not a priority", p.Priority), at("priority")...)
		}
		if i > 0 {
			switch c := comparePackages(l.Packages[i-1], p); {
			case c == 0:
				return fieldErr(fmt.Sprintf("%s:%s is listed twice", p.Name, p.Architecture), at("name")...)
			case c > 0:
				return fieldErr(fmt.Sprintf("%s:%s is out of order (packages are sorted by name, then architecture)", p.Name, p.Architecture), at("name")...)
			}
		}
	}
	return nil
}

// SafeFilename reports whether a repository path (a Packages Filename)
// is relative, clean and free of "..", so that it can name a URL below
// the repository and a file below a directory.
func SafeFilename(f string) bool {
	if !filenameRE.MatchString(f) || strings.HasSuffix(f, "/") {
		return false
	}
	for _, part := range strings.Split(f, "/") {
		if part == "" || part == "." || part == ".." {
			return false
		}
	}
	return true
}

func comparePackages(a, b LockedPackage) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Architecture, b.Architecture))
}

// Sort orders the packages as Write and Validate expect.
func (l *Lock) Sort() { slices.SortFunc(l.Packages, comparePackages) }

// URL is where the package's .deb is downloaded from ("" for a local
// package).
func (l *Lock) URL(p LockedPackage) string {
	if p.Local != "" {
		return ""
	}
	return strings.TrimSuffix(l.Repositories[p.Repository].URL, "/") + "/" + p.Filename
}

// Write prints the lock deterministically: a fixed header, repositories
// in order, then one line per package sorted by name and architecture.
// It sorts l.Packages and refuses an invalid lock.
func (l *Lock) Write(w io.Writer) error {
	l.Sort()
	if err := l.Validate(); err != nil {
		return fmt.Errorf("writing lock: %w", err)
	}
	doc := &yaml.Node{Kind: yaml.MappingNode}
	add := func(m *yaml.Node, k string, v *yaml.Node) {
		m.Content = append(m.Content, str(k), v)
	}
	add(doc, "version", num(int64(l.Version)))
	add(doc, "spec-sha256", str(l.SpecSHA256))
	add(doc, "source-date-epoch", num(l.SourceDateEpoch))
	repos := &yaml.Node{Kind: yaml.SequenceNode}
	for _, r := range l.Repositories {
		m := &yaml.Node{Kind: yaml.MappingNode}
		add(m, "url", str(r.URL))
		add(m, "suite", str(r.Suite))
		comps := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, c := range r.Components {
			comps.Content = append(comps.Content, str(c))
		}
		add(m, "components", comps)
		add(m, "inrelease-sha256", str(r.InReleaseSHA256))
		add(m, "date", str(r.Date))
		repos.Content = append(repos.Content, m)
	}
	add(doc, "repositories", repos)
	pkgs := &yaml.Node{Kind: yaml.SequenceNode}
	for _, p := range l.Packages {
		m := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		add(m, "name", str(p.Name))
		add(m, "version", str(p.Version))
		add(m, "architecture", str(p.Architecture))
		add(m, "repository", num(int64(p.Repository)))
		add(m, "filename", str(p.Filename))
		add(m, "size", num(p.Size))
		add(m, "sha256", str(p.SHA256))
		if p.Essential {
			add(m, "essential", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
		}
		if p.Priority != "" {
			add(m, "priority", str(p.Priority))
		}
		if p.Local != "" {
			add(m, "local", str(p.Local))
		}
		pkgs.Content = append(pkgs.Content, m)
	}
	add(doc, "packages", pkgs)

	var buf bytes.Buffer
	buf.WriteString("# ingot lock file, written by `ingot lock`: do not edit by hand.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("writing lock: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("writing lock: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// str is a string scalar; words that YAML 1.1 readers take for booleans
// (a package may be called "yes") are quoted for their sake.
func str(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~":
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}
func num(n int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: fmt.Sprint(n)}
}

// ParseReleaseDate parses a Release file's Date field ("Sat, 10 Feb 2024
// 10:23:45 UTC"; RFC 1123 with a numeric zone is accepted too).
func ParseReleaseDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC1123, time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a Release date (such as \"Sat, 10 Feb 2024 10:23:45 UTC\")", s)
}
