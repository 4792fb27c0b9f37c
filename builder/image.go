package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ingotfleet/ingot/builder/dpkgdb"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/images/imagetar"
	"github.com/ingotfleet/ingot/images/store"
)

// Meta is what a build records about where it came from.
type Meta struct {
	Name, Tag    string // the image reference name:tag ("" for none)
	IngotVersion string
	SpecSHA256   string // sha256 of the spec file as read
	LockSHA256   string // sha256 of the lock file as read
	// DownloadURL gives each package's URL (for the SBOM); may be nil.
	DownloadURL func(p *Package) string
}

// Image is a finished build in the store.
type Image struct {
	Digest     images.Digest
	Manifest   *images.Manifest
	Record     images.Digest // the build record (an image of the files below)
	Packages   []byte        // "name version architecture" lines, sorted
	SBOM       []byte        // SPDX 2.3 JSON
	Provenance []byte        // in-toto statement with a SLSA provenance v1 predicate
}

// RecordRef is the reference of an image's build record: name.build:tag.
func RecordRef(name, tag string) string { return name + ".build:" + tag }

// Finish walks the built root into a manifest, imports it into st (tar
// stream through store.Import, one sync for all objects), optionally
// writes the same deterministic tar to tarOut (compressed as c), and
// stores the package list, SBOM and provenance as a build record image
// beside it. With meta.Name set, it points name:tag at the image and
// name.build:tag at the record.
func Finish(ctx context.Context, r *Root, in *Input, meta Meta, st *store.Store, tarOut io.Writer, c compression.Compression, progress func(Event)) (*Image, error) {
	if progress == nil {
		progress = func(Event) {}
	}
	progress(Event{Phase: "walk"})
	m, err := images.WalkDir(ctx, r.Dir, images.WalkOptions{}, nil)
	if err != nil {
		return nil, err
	}
	progress(Event{Phase: "import", Total: len(m.Entries)})
	d, err := importTree(ctx, m, r.Dir, st, tarOut, c)
	if err != nil {
		return nil, err
	}
	if want := m.Digest(); d != want {
		return nil, fmt.Errorf("import gave image %s, the walked manifest is %s", d, want)
	}
	img := &Image{Digest: d, Manifest: m}
	db, err := dpkgdb.Load(r.Dir)
	if err != nil {
		return nil, err
	}
	img.Packages = PackageList(db)
	img.SBOM, err = SBOM(db, in, meta, d)
	if err != nil {
		return nil, err
	}
	img.Provenance, err = Provenance(in, meta, d)
	if err != nil {
		return nil, err
	}
	img.Record, err = putRecord(ctx, st, img, in.SourceDateEpoch)
	if err != nil {
		return nil, err
	}
	if meta.Name != "" {
		if err := st.SetRef(ctx, meta.Name+":"+meta.Tag, d); err != nil {
			return nil, err
		}
		if err := st.SetRef(ctx, RecordRef(meta.Name, meta.Tag), img.Record); err != nil {
			return nil, err
		}
	}
	progress(Event{Phase: "import", Done: len(m.Entries), Total: len(m.Entries)})
	return img, nil
}

// importTree streams the tree as a deterministic tar into the store, and
// into tarOut when given.
func importTree(ctx context.Context, m *images.Manifest, root string, st *store.Store, tarOut io.Writer, c compression.Compression) (images.Digest, error) {
	pr, pw := io.Pipe()
	var comp io.WriteCloser
	dst := io.Writer(pw)
	if tarOut != nil {
		var err error
		if comp, err = compression.NewCompressor(tarOut, c); err != nil {
			return images.Digest{}, err
		}
		dst = io.MultiWriter(pw, comp)
	}
	werr := make(chan error, 1)
	go func() {
		err := imagetar.Write(ctx, dst, m, images.DirOpener(root))
		if err == nil && comp != nil {
			err = comp.Close()
		}
		pw.CloseWithError(err)
		werr <- err
	}()
	d, err := st.Import(ctx, pr, store.ImportOptions{Name: "build of " + root})
	pr.CloseWithError(errors.New("import stopped"))
	if e := <-werr; e != nil && err == nil {
		err = e
	}
	if err != nil {
		return images.Digest{}, fmt.Errorf("importing the image: %w", err)
	}
	return d, nil
}

// PackageList is "name version architecture" for every installed
// package (dpkgdb's one meaning: its files are on disk), sorted by name
// and architecture. In a built image every package is fully installed
// (checkInstalled), so the two meanings agree.
func PackageList(db *dpkgdb.DB) []byte {
	lines := make([]string, 0, len(db.Packages))
	for _, p := range db.Packages {
		if p.HasFiles() {
			lines = append(lines, p.Name+" "+p.Version+" "+p.Architecture)
		}
	}
	sort.Strings(lines)
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// recordFiles are the files of a build record image, in manifest order.
var recordFiles = []string{"manifest", "packages", "provenance.json", "sbom.spdx.json"}

func recordContent(img *Image, name string) []byte {
	switch name {
	case "manifest":
		return img.Manifest.Bytes()
	case "packages":
		return img.Packages
	case "provenance.json":
		return img.Provenance
	case "sbom.spdx.json":
		return img.SBOM
	}
	return nil
}

// putRecord stores the build's side files as a small image whose files
// are the manifest, the package list, the provenance and the SBOM; every
// file is a store object like any image file.
func putRecord(ctx context.Context, st *store.Store, img *Image, sde int64) (images.Digest, error) {
	entries := []images.Entry{{Path: ".", Type: images.TypeDir, Mode: 0o755, Uname: "root", Gname: "root", Mtime: sde}}
	for _, name := range recordFiles {
		data := recordContent(img, name)
		sha, size, err := st.PutFile(ctx, bytes.NewReader(data))
		if err != nil {
			return images.Digest{}, fmt.Errorf("storing the build record: %w", err)
		}
		entries = append(entries, images.Entry{Path: name, Type: images.TypeFile, Mode: 0o644,
			Uname: "root", Gname: "root", Size: size, SHA256: sha, Mtime: sde})
	}
	m, err := images.NewManifest(entries)
	if err != nil {
		return images.Digest{}, err
	}
	return st.PutManifest(ctx, m)
}

// SideFiles names the files written beside an image tar given with -o:
// for "out/server.tar.zst", "out/server.manifest", "out/server.packages",
// "out/server.provenance.json", "out/server.spdx.json".
func SideFiles(tarPath string) map[string]string {
	base := tarPath
	for _, ext := range []string{".tar.zst", ".tzst", ".tar.gz", ".tgz", ".tar"} {
		if strings.HasSuffix(base, ext) {
			base = strings.TrimSuffix(base, ext)
			break
		}
	}
	return map[string]string{
		"manifest":        base + ".manifest",
		"packages":        base + ".packages",
		"provenance.json": base + ".provenance.json",
		"sbom.spdx.json":  base + ".spdx.json",
	}
}

// SideFile returns the content of one of the record files by name.
func (img *Image) SideFile(name string) []byte { return recordContent(img, name) }
