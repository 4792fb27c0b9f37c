package pkgbuild

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ulikunitz/xz"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/builder/debrepo"
	"github.com/ingotfleet/ingot/builder/spec"
	"github.com/ingotfleet/ingot/internal/debversion"
)

// FetchSource finds source package name (at version, or the newest when
// version is "") in the Sources indices of idx's verified suites, and
// downloads its .dsc and files into the cache: the Sources index is
// checked against the suite's signed Release file, and every file of the
// source against the index's Checksums-Sha256, so the .dsc is as the
// archive signed it. The files are linked (or copied) into dir, and the
// .dsc's path is returned.
func FetchSource(ctx context.Context, idx *debrepo.Index, cache *debrepo.Cache, name, version, dir string) (string, error) {
	if !srcNameRE.MatchString(name) || (version != "" && !srcVerRE.MatchString(version)) {
		return "", fmt.Errorf("%q=%q is not a source package name and version", truncate(name), truncate(version))
	}
	type found struct {
		suite     debrepo.Suite
		directory string
		version   string
		files     []FileSum
	}
	var best *found
	for _, su := range idx.Suites {
		for _, comp := range su.Components {
			fh, ext, ok := sourcesIndex(su.Release, comp)
			if !ok {
				continue
			}
			base := strings.TrimSuffix(su.URL, "/") + "/dists/" + su.Suite + "/"
			paths, err := cache.Fetch(ctx, []debrepo.Item{{Name: su.Suite + "/" + fh.Path, URL: base + fh.Path, Size: fh.Size, SHA256: fh.SHA256}}, nil)
			if err != nil {
				return "", err
			}
			err = readSources(paths[0], ext, base+fh.Path, func(p *deb.Paragraph) error {
				if p.Get("Package") != name || (version != "" && p.Get("Version") != version) {
					return nil
				}
				v := p.Get("Version")
				if best != nil && debversion.Compare(v, best.version) <= 0 {
					return nil
				}
				files, err := ParseChecksums(p.Get("Checksums-Sha256"))
				if err != nil {
					return fmt.Errorf("%s %s: %w", name, v, err)
				}
				d := p.Get("Directory")
				if !spec.SafeFilename(d) {
					return fmt.Errorf("%s %s: Directory %q is not a safe relative path", name, v, truncate(d))
				}
				best = &found{suite: su, directory: d, version: v, files: files}
				return nil
			})
			if err != nil {
				return "", err
			}
		}
	}
	if best == nil {
		if version != "" {
			return "", fmt.Errorf("source package %s %s is in none of the Sources indices", name, version)
		}
		return "", fmt.Errorf("source package %s is in none of the Sources indices", name)
	}
	var items []debrepo.Item
	dsc := ""
	for _, f := range best.files {
		items = append(items, debrepo.Item{Name: f.Name, URL: strings.TrimSuffix(best.suite.URL, "/") + "/" + best.directory + "/" + f.Name, Size: f.Size, SHA256: f.SHA256})
		if strings.HasSuffix(f.Name, ".dsc") {
			dsc = f.Name
		}
	}
	if dsc == "" {
		return "", fmt.Errorf("source package %s %s lists no .dsc", name, best.version)
	}
	paths, err := cache.Fetch(ctx, items, nil)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for i, f := range best.files {
		dst := filepath.Join(dir, f.Name)
		_ = os.Remove(dst) // replaced just below; an error shows in Link or copyFile
		if err := os.Link(paths[i], dst); err != nil {
			if err := copyFile(paths[i], dst); err != nil {
				return "", err
			}
		}
	}
	return filepath.Join(dir, dsc), nil
}

// sourcesIndex finds a component's Sources index in a Release file.
func sourcesIndex(rel *debrepo.Release, comp string) (debrepo.FileHash, string, bool) {
	for _, ext := range []string{".xz", ".gz"} {
		if fh, ok := rel.Files[comp+"/source/Sources"+ext]; ok {
			return fh, ext, true
		}
	}
	return debrepo.FileHash{}, "", false
}

func readSources(p, ext, name string, fn func(*deb.Paragraph) error) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	switch ext {
	case ".xz":
		if r, err = xz.NewReader(f); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	case ".gz":
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer zr.Close()
		r = zr
	default:
		return errors.New("unknown compression")
	}
	return deb.ReadParagraphs(r, name, false, fn)
}
