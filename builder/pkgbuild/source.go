package pkgbuild

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/builder/debrepo"
)

// Source is a Debian source package to build: a .dsc with its files, or
// an unpacked tree with debian/.
type Source struct {
	Name    string
	Version string
	// Dsc is the .dsc file and Files the files it lists (beside it,
	// each checked against Checksums-Sha256); empty for a tree.
	Dsc       string
	DscSHA256 string
	Files     []string
	// Tree is the unpacked source tree; empty for a .dsc.
	Tree string
	// Relations holds the build relation fields as written:
	// Build-Depends, Build-Depends-Arch, Build-Depends-Indep,
	// Build-Conflicts, Build-Conflicts-Arch, Build-Conflicts-Indep.
	Relations map[string]string
}

// RelationFields are the fields of Source.Relations, in order.
var RelationFields = []string{
	"Build-Depends", "Build-Depends-Arch", "Build-Depends-Indep",
	"Build-Conflicts", "Build-Conflicts-Arch", "Build-Conflicts-Indep",
}

// ErrChecksum is wrapped by errors about a source file that does not
// match the .dsc (or a .dsc that does not match the Sources index).
var ErrChecksum = errors.New("checksum mismatch")

var (
	srcNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	srcVerRE  = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~:-]*$`)
	hexRE     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// maxDsc bounds the size of a .dsc and of debian/control.
const maxDsc = 1 << 20

// LoadDsc reads a .dsc (clear-signed or not; the signature is not
// checked here: a .dsc fetched from a repository is checked against the
// signed Sources index instead) and checks every file of its
// Checksums-Sha256 field, which must lie beside it.
func LoadDsc(path string) (*Source, error) {
	data, err := readLimited(path, maxDsc)
	if err != nil {
		return nil, err
	}
	src, sums, err := ParseDsc(data, path)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(data)
	src.Dsc, src.DscSHA256 = path, hex.EncodeToString(h[:])
	dir := filepath.Dir(path)
	for _, s := range sums {
		p := filepath.Join(dir, s.Name)
		if err := checkFile(p, s.Size, s.SHA256); err != nil {
			return nil, err
		}
		src.Files = append(src.Files, p)
	}
	return src, nil
}

// FileSum is one line of a Checksums-Sha256 field.
type FileSum struct {
	SHA256 string
	Size   int64
	Name   string
}

// ParseDsc parses the text of a .dsc: Source, Version, the build
// relations and Checksums-Sha256 (file names must be plain names: the
// files lie beside the .dsc). file names it in errors.
func ParseDsc(data []byte, file string) (*Source, []FileSum, error) {
	if t := bytes.TrimLeft(data, " \t\r\n"); bytes.HasPrefix(t, []byte("-----BEGIN PGP SIGNED MESSAGE-----")) {
		block, _ := debrepo.DecodeClearsigned(t)
		if block == nil {
			return nil, nil, fmt.Errorf("%s: malformed clear-signed message", file)
		}
		data = block.Plaintext
	}
	ps, err := parseParagraphs(data, file, false)
	if err != nil {
		return nil, nil, err
	}
	if len(ps) != 1 {
		return nil, nil, fmt.Errorf("%s: want one paragraph, found %d", file, len(ps))
	}
	p := ps[0]
	src := &Source{Name: p.Get("Source"), Version: p.Get("Version"), Relations: map[string]string{}}
	if err := src.validate(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	for _, f := range RelationFields {
		src.Relations[f] = oneLine(p.Get(f))
	}
	sums, err := ParseChecksums(p.Get("Checksums-Sha256"))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: Checksums-Sha256: %w", file, err)
	}
	if len(sums) == 0 {
		return nil, nil, fmt.Errorf("%s: no Checksums-Sha256 field", file)
	}
	return src, sums, nil
}

// ParseChecksums parses a Checksums-Sha256 field of a .dsc or a Sources
// paragraph: lines "SHA256 SIZE NAME" with NAME a plain file name.
func ParseChecksums(v string) ([]FileSum, error) {
	var out []FileSum
	seen := map[string]bool{}
	for _, l := range strings.Split(v, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("line %q: want sha256, size and name", truncate(l))
		}
		sha := strings.ToLower(f[0])
		n, err := strconv.ParseInt(f[1], 10, 64)
		if !hexRE.MatchString(sha) || err != nil || n < 0 {
			return nil, fmt.Errorf("line %q: bad sha256 or size", truncate(l))
		}
		if !plainName(f[2]) {
			return nil, fmt.Errorf("file name %q is not a plain file name", truncate(f[2]))
		}
		if seen[f[2]] {
			return nil, fmt.Errorf("file %s listed twice", f[2])
		}
		seen[f[2]] = true
		out = append(out, FileSum{SHA256: sha, Size: n, Name: f[2]})
	}
	return out, nil
}

func plainName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\x00") && !strings.HasPrefix(n, "-")
}

// LoadTree reads an unpacked source tree: the source paragraph of
// debian/control and the name and version of debian/changelog's first
// entry.
func LoadTree(dir string) (*Source, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	ctl := filepath.Join(abs, "debian", "control")
	data, err := readLimited(ctl, maxDsc)
	if err != nil {
		return nil, fmt.Errorf("%s is not a Debian source tree: %w", dir, err)
	}
	ps, err := parseParagraphs(data, ctl, true)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("%s: empty", ctl)
	}
	chl := filepath.Join(abs, "debian", "changelog")
	head, err := readLimited(chl, maxDsc)
	if err != nil {
		return nil, fmt.Errorf("%s is not a Debian source tree: %w", dir, err)
	}
	name, version, err := ParseChangelogHead(head)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", chl, err)
	}
	src := &Source{Name: name, Version: version, Tree: abs, Relations: map[string]string{}}
	if n := ps[0].Get("Source"); n != name {
		return nil, fmt.Errorf("%s: Source %q, but debian/changelog is for %q", ctl, truncate(n), name)
	}
	if err := src.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	for _, f := range RelationFields {
		src.Relations[f] = oneLine(ps[0].Get(f))
	}
	return src, nil
}

// ParseChangelogHead reads the source name and version from the first
// entry of a debian/changelog ("hello (2.10-3) unstable; urgency=medium").
func ParseChangelogHead(data []byte) (name, version string, err error) {
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		n, rest, ok := strings.Cut(l, " (")
		v, _, ok2 := strings.Cut(rest, ")")
		if !ok || !ok2 || !srcNameRE.MatchString(n) || !srcVerRE.MatchString(v) {
			return "", "", fmt.Errorf("first entry %q: want \"NAME (VERSION) DISTRIBUTION; urgency=...\"", truncate(l))
		}
		return n, v, nil
	}
	return "", "", errors.New("no entry")
}

func (s *Source) validate() error {
	if !srcNameRE.MatchString(s.Name) {
		return fmt.Errorf("source name %q is not valid", truncate(s.Name))
	}
	if !srcVerRE.MatchString(s.Version) {
		return fmt.Errorf("version %q is not valid", truncate(s.Version))
	}
	return nil
}

// UpstreamVersion is the version without epoch and Debian revision, as
// dpkg-source names the unpacked directory.
func (s *Source) UpstreamVersion() string {
	v := s.Version
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	if i := strings.LastIndexByte(v, '-'); i > 0 {
		v = v[:i]
	}
	return v
}

// ID is name_version without the epoch, the way Debian names the
// source's files.
func (s *Source) ID() string {
	v := s.Version
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	return s.Name + "_" + v
}

func checkFile(p string, size int64, sha string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	if n != size {
		return fmt.Errorf("%w: %s has %d bytes, want %d", ErrChecksum, p, n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return fmt.Errorf("%w: %s has sha256 %s, want %s", ErrChecksum, p, got, sha)
	}
	return nil
}

func readLimited(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", p, limit)
	}
	return data, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// parseParagraphs reads every deb822 paragraph of data; comments ("#"
// lines) are allowed only where dpkg allows them (debian/control, not a
// .dsc).
func parseParagraphs(data []byte, name string, comments bool) ([]*deb.Paragraph, error) {
	var ps []*deb.Paragraph
	err := deb.ReadParagraphs(bytes.NewReader(data), name, comments, func(p *deb.Paragraph) error {
		ps = append(ps, p)
		return nil
	})
	return ps, err
}
