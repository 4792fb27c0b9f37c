package debrepo

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/sourcegraph/conc"
	"github.com/ulikunitz/xz"

	"github.com/ingotfleet/ingot/builder/spec"
)

// Repo is a repository to read: base URL, suites, components and the
// keyring that must have signed each suite's InRelease.
type Repo struct {
	URL        string
	Suites     []string
	Components []string
	Keyring    *Keyring
	// From says where the repository was configured (a spec, an apt
	// sources file and line), for messages.
	From string
}

// RepoFromSpec loads the keyring of a spec's repository.
func RepoFromSpec(s *spec.Spec, i int) (Repo, error) {
	r := s.Repositories[i]
	k, err := LoadKeyring(s.Path(r.Keyring))
	if err != nil {
		return Repo{}, fmt.Errorf("repository %s: %w", r.URL, err)
	}
	return Repo{URL: r.URL, Suites: r.Suites, Components: r.Components, Keyring: k, From: fmt.Sprintf("spec repositories[%d]", i)}, nil
}

// Suite is one verified suite of a repository.
type Suite struct {
	URL             string
	Suite           string
	Components      []string
	Release         *Release
	InReleaseSHA256 string // sha256 of InRelease (of Release, for a Release.gpg suite)
	Signer          Signer
}

// Index is the verified package lists of a set of suites. Each Package's
// Repository field indexes Suites.
type Index struct {
	Suites   []Suite
	Packages []*Package
}

// FetchIndex fetches and verifies every suite of repos, for the given
// architectures (packages of architecture "all" are always included), in
// parallel; the result is in the order of repos and their suites.
func (c *Client) FetchIndex(ctx context.Context, repos []Repo, archs []string) (*Index, error) {
	type job struct {
		repo  Repo
		suite string
	}
	var jobs []job
	for _, r := range repos {
		for _, s := range r.Suites {
			jobs = append(jobs, job{r, s})
		}
	}
	type result struct {
		suite Suite
		pkgs  []*Package
		err   error
	}
	results := make([]result, len(jobs))
	var wg conc.WaitGroup // one fetch per suite; a panic is raised by Wait
	for i, j := range jobs {
		wg.Go(func() {
			s, pkgs, err := c.FetchSuite(ctx, j.repo, j.suite, archs)
			var se *syncError
			for try := 0; try < 3 && errors.As(err, &se); try++ {
				// The mirror is between two states: read the suite again
				// from its InRelease, as a later apt update would.
				select {
				case <-ctx.Done():
				case <-time.After(time.Duration(try+1) * c.syncDelay()):
				}
				s, pkgs, err = c.FetchSuite(ctx, j.repo, j.suite, archs)
			}
			results[i] = result{s, pkgs, err}
		})
	}
	wg.Wait()
	idx := &Index{}
	var errs []error
	for i, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		for _, p := range r.pkgs {
			p.Repository = i
		}
		idx.Suites = append(idx.Suites, r.suite)
		idx.Packages = append(idx.Packages, r.pkgs...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return idx, nil
}

func suiteURL(base, suite string) string {
	return strings.TrimSuffix(base, "/") + "/dists/" + suite + "/"
}

// FetchSuite fetches dists/SUITE/InRelease, verifies it with the repo's
// keyring, and reads the Packages index of each component and
// architecture, each checked against the Release file's size and sha256.
func (c *Client) FetchSuite(ctx context.Context, r Repo, suite string, archs []string) (Suite, []*Package, error) {
	base := suiteURL(r.URL, suite)
	inURL := base + "InRelease"
	if r.Keyring == nil {
		return Suite{}, nil, fmt.Errorf("%s: no keyring to verify it with", inURL)
	}
	data, err := c.get(ctx, inURL, c.maxSize())
	var body []byte
	var signer Signer
	switch {
	case errors.Is(err, ErrNotFound):
		// An older layout: Release with a detached Release.gpg.
		relURL := base + "Release"
		var rerr error
		data, rerr = c.get(ctx, relURL, c.maxSize())
		if errors.Is(rerr, ErrNotFound) {
			return Suite{}, nil, fmt.Errorf("%w (nor is there a Release file: is suite %q right?)", err, suite)
		}
		if rerr != nil {
			return Suite{}, nil, rerr
		}
		sig, err := c.get(ctx, relURL+".gpg", 1<<20)
		if err != nil {
			return Suite{}, nil, fmt.Errorf("%s: %w: %w", relURL, ErrUnsigned, err)
		}
		if body, signer, err = VerifyDetached(data, sig, r.Keyring, c.now(), relURL); err != nil {
			return Suite{}, nil, err
		}
		inURL = relURL
	case err != nil:
		return Suite{}, nil, err
	default:
		if body, signer, err = VerifyInRelease(data, r.Keyring, c.now(), inURL); err != nil {
			return Suite{}, nil, err
		}
	}
	rel, err := ParseRelease(body, inURL)
	if err != nil {
		return Suite{}, nil, err
	}
	if err := rel.CheckValid(c.now()); err != nil {
		return Suite{}, nil, fmt.Errorf("%s: %w", inURL, err)
	}
	sum := sha256.Sum256(data)
	s := Suite{URL: r.URL, Suite: suite, Components: r.Components, Release: rel, InReleaseSHA256: hex.EncodeToString(sum[:]), Signer: signer}

	wantArchs := slices.Clone(archs)
	if !rel.NoArchAllPackages && slices.Contains(rel.Architectures, "all") {
		wantArchs = append(wantArchs, "all")
	}
	var pkgs []*Package
	for _, comp := range r.Components {
		if len(rel.Components) > 0 && !slices.ContainsFunc(rel.Components, func(c string) bool { return c == comp || lastPart(c) == comp }) {
			return Suite{}, nil, fmt.Errorf("%s: suite %s has no component %q (it has %s)", inURL, suite, comp, strings.Join(rel.Components, " "))
		}
		for _, arch := range wantArchs {
			if arch != "all" && len(rel.Architectures) > 0 && !slices.Contains(rel.Architectures, arch) {
				return Suite{}, nil, fmt.Errorf("%s: suite %s has no architecture %q (it has %s)", inURL, suite, arch, strings.Join(rel.Architectures, " "))
			}
			got, err := c.fetchPackages(ctx, base, rel, comp+"/binary-"+arch+"/Packages", arch == "all")
			if err != nil {
				return Suite{}, nil, err
			}
			pkgs = append(pkgs, got...)
		}
	}
	return s, pkgs, nil
}

func lastPart(comp string) string { return comp[strings.LastIndexByte(comp, '/')+1:] }

// fetchPackages downloads one Packages index in the best compression the
// Release file lists, checks it against the Release hashes, and parses it.
// An index the Release does not list is an error unless optional.
func (c *Client) fetchPackages(ctx context.Context, base string, rel *Release, path string, optional bool) (_ []*Package, rerr error) {
	var fh FileHash
	var ext string
	for _, e := range []string{".gz", ".xz", ""} {
		if f, ok := rel.Files[path+e]; ok {
			fh, ext = f, e
			break
		}
	}
	if fh.Path == "" {
		if optional {
			return nil, nil
		}
		return nil, fmt.Errorf("%sInRelease lists no %s(.xz|.gz)", base, path)
	}
	u := base + fh.Path
	var data []byte
	var err error
	hint := ""
	if rel.AcquireByHash {
		dir := fh.Path[:strings.LastIndexByte(fh.Path, '/')+1]
		data, err = c.get(ctx, base+dir+"by-hash/SHA256/"+fh.SHA256, fh.Size)
		if errors.Is(err, ErrNotFound) {
			hint = " (its by-hash copy is missing too: mirror sync in progress?)"
			defer func() {
				if rerr != nil && errors.Is(rerr, ErrHashMismatch) {
					rerr = &syncError{rerr}
				}
			}()
			data, err = c.get(ctx, u, fh.Size)
		}
	} else {
		data, err = c.get(ctx, u, fh.Size)
	}
	var tl *tooLarge
	if errors.As(err, &tl) {
		return nil, fmt.Errorf("%s: %w: larger than the %d bytes the Release file says%s", u, ErrHashMismatch, fh.Size, hint)
	}
	if err != nil {
		return nil, err
	}
	if err := checkHash(data, fh); err != nil {
		return nil, fmt.Errorf("%s: %w%s", u, err, hint)
	}
	var rd io.Reader = bytes.NewReader(data)
	switch ext {
	case ".gz":
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u, err)
		}
		defer zr.Close()
		rd = zr
	case ".xz":
		xr, err := xz.NewReader(rd)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u, err)
		}
		rd = xr
	}
	// When the Release also lists the uncompressed index, check what the
	// decompressor produced against it too.
	var plainHash hash.Hash
	var plainSize int64
	plain, checkPlain := rel.Files[path]
	if ext != "" && checkPlain {
		plainHash = sha256.New()
		rd = io.TeeReader(rd, plainHash)
		rd = &countReader{r: rd, n: &plainSize}
	}
	var pkgs []*Package
	if err := ParsePackages(rd, u, func(p *Package) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		pkgs = append(pkgs, p)
		return nil
	}); err != nil {
		return nil, err
	}
	if plainHash != nil {
		if _, err := io.Copy(io.Discard, rd); err != nil {
			return nil, fmt.Errorf("%s: %w", u, err)
		}
		if got := hex.EncodeToString(plainHash.Sum(nil)); got != plain.SHA256 || plainSize != plain.Size {
			return nil, fmt.Errorf("%s: decompressed index does not match %s in the Release file (sha256 %s, want %s)", u, path, got, plain.SHA256)
		}
	}
	return pkgs, nil
}

// ErrHashMismatch is returned (wrapped) when downloaded bytes do not match
// the expected size or sha256.
var ErrHashMismatch = errors.New("does not match the expected hash")

func checkHash(data []byte, fh FileHash) error {
	if int64(len(data)) != fh.Size {
		return fmt.Errorf("%w: size %d, want %d", ErrHashMismatch, len(data), fh.Size)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != fh.SHA256 {
		return fmt.Errorf("%w: sha256 %s, want %s", ErrHashMismatch, got, fh.SHA256)
	}
	return nil
}

type countReader struct {
	r io.Reader
	n *int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// syncError marks an index that matched neither its by-hash copy (absent)
// nor the Release file: a mirror in the middle of an update.
type syncError struct{ err error }

func (e *syncError) Error() string { return e.err.Error() }
func (e *syncError) Unwrap() error { return e.err }
