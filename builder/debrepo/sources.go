package debrepo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// AptSource is one "deb" entry of the host's apt configuration.
type AptSource struct {
	URL        string
	Suites     []string
	Components []string
	// SignedBy lists keyring files; empty means apt's trusted keyrings
	// (/etc/apt/trusted.gpg and /etc/apt/trusted.gpg.d).
	SignedBy []string
	// InlineKey holds an armored key block given in a .sources file's
	// Signed-By field.
	InlineKey []byte
	File      string // file and line, for messages
}

// HostSources reads the apt sources under root ("/" for the build host):
// etc/apt/sources.list, etc/apt/sources.list.d/*.list (one-line format)
// and etc/apt/sources.list.d/*.sources (deb822). Only "deb" entries are
// returned; deb-src, disabled entries and files with other suffixes are
// left out, as apt does.
func HostSources(root string) ([]AptSource, error) {
	etc := filepath.Join(root, "etc", "apt")
	files := []string{filepath.Join(etc, "sources.list")}
	d := filepath.Join(etc, "sources.list.d")
	ents, err := os.ReadDir(d)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading apt sources: %w", err)
	}
	for _, e := range ents {
		if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".list") || strings.HasSuffix(n, ".sources")) {
			files = append(files, filepath.Join(d, n))
		}
	}
	slices.Sort(files[1:])
	var out []AptSource
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading apt sources: %w", err)
		}
		var got []AptSource
		if strings.HasSuffix(f, ".sources") {
			got, err = ParseSourcesDeb822(data, f)
		} else {
			got, err = ParseSourcesList(data, f)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// ParseSourcesList parses the one-line format:
//
//	deb [signed-by=/usr/share/keyrings/x.gpg arch=amd64] http://deb.debian.org/debian bookworm main
func ParseSourcesList(data []byte, file string) ([]AptSource, error) {
	var out []AptSource
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxLine)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		errAt := func(format string, args ...any) error {
			return &ParseError{File: file, Line: n, Err: fmt.Errorf(format, args...)}
		}
		typ, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		if typ != "deb" && typ != "deb-src" {
			return nil, errAt("unknown type %q (want deb or deb-src)", truncate(typ))
		}
		var opts []string
		if strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, errAt("options without a closing ]")
			}
			opts = strings.Fields(rest[1:end])
			rest = rest[end+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			return nil, errAt("want URI and suite")
		}
		if typ != "deb" {
			continue
		}
		s := AptSource{URL: f[0], Suites: []string{f[1]}, Components: f[2:], File: fmt.Sprintf("%s:%d", file, n)}
		if strings.HasSuffix(f[1], "/") {
			return nil, errAt("flat repository %s %s is not supported", f[0], f[1])
		}
		if len(s.Components) == 0 {
			return nil, errAt("no components")
		}
		for _, o := range opts {
			k, v, ok := strings.Cut(o, "=")
			if !ok {
				return nil, errAt("option %q is not key=value", truncate(o))
			}
			if strings.EqualFold(k, "signed-by") {
				s.SignedBy = splitList(v)
			}
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return out, nil
}

// ParseSourcesDeb822 parses a .sources file (sources.list(5), deb822 style).
func ParseSourcesDeb822(data []byte, file string) ([]AptSource, error) {
	ps, err := parseParagraphs(data, file, true)
	if err != nil {
		return nil, err
	}
	var out []AptSource
	for _, p := range ps {
		errAt := func(format string, args ...any) error {
			return &ParseError{File: file, Line: p.Line, Err: fmt.Errorf(format, args...)}
		}
		if strings.EqualFold(p.Text("Enabled"), "no") {
			continue
		}
		types := strings.Fields(p.Text("Types"))
		if len(types) == 0 {
			return nil, errAt("no Types")
		}
		if !slices.Contains(types, "deb") {
			continue
		}
		uris := strings.Fields(p.Text("URIs"))
		suites := strings.Fields(p.Text("Suites"))
		comps := strings.Fields(p.Text("Components"))
		if len(uris) == 0 || len(suites) == 0 {
			return nil, errAt("want URIs and Suites")
		}
		for _, s := range suites {
			if strings.HasSuffix(s, "/") {
				return nil, errAt("flat repository suite %s is not supported", s)
			}
		}
		if len(comps) == 0 {
			return nil, errAt("no Components")
		}
		var signedBy []string
		var inline []byte
		if sb := p.Text("Signed-By"); sb != "" {
			if strings.Contains(sb, "-----BEGIN PGP PUBLIC KEY BLOCK-----") {
				inline = []byte(sb + "\n")
			} else {
				for _, v := range splitList(sb) {
					if strings.HasPrefix(v, "/") {
						signedBy = append(signedBy, v)
					}
					// Fingerprints select keys of the trusted keyrings;
					// those are all loaded, so nothing to add.
				}
			}
		}
		for _, u := range uris {
			out = append(out, AptSource{
				URL: u, Suites: suites, Components: comps, SignedBy: signedBy, InlineKey: inline,
				File: fmt.Sprintf("%s:%d", file, p.Line),
			})
		}
	}
	return out, nil
}

func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// HostRepos turns the apt sources under root into Repos with loaded
// keyrings (paths are taken below root too).
func HostRepos(root string) ([]Repo, error) {
	srcs, err := HostSources(root)
	if err != nil {
		return nil, err
	}
	if len(srcs) == 0 {
		return nil, fmt.Errorf("no apt sources under %s: name a repository in the spec", filepath.Join(root, "etc/apt"))
	}
	var repos []Repo
	for _, s := range srcs {
		k := &Keyring{}
		var paths []string
		for _, p := range s.SignedBy {
			paths = append(paths, filepath.Join(root, p))
		}
		if len(s.SignedBy) == 0 && s.InlineKey == nil {
			for _, p := range []string{"etc/apt/trusted.gpg", "etc/apt/trusted.gpg.d"} {
				if _, err := os.Stat(filepath.Join(root, p)); err == nil {
					paths = append(paths, filepath.Join(root, p))
				}
			}
		}
		if len(paths) > 0 {
			if k, err = LoadKeyring(paths...); err != nil {
				return nil, fmt.Errorf("%s: %w", s.File, err)
			}
		}
		if s.InlineKey != nil {
			if err := k.Add(s.InlineKey, s.File+" Signed-By"); err != nil {
				return nil, err
			}
		}
		if len(k.Entities) == 0 {
			return nil, fmt.Errorf("%s: no keyring for %s", s.File, s.URL)
		}
		repos = append(repos, Repo{URL: s.URL, Suites: s.Suites, Components: s.Components, Keyring: k, From: s.File})
	}
	return repos, nil
}
