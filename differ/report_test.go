package differ_test

import (
	"bytes"
	"context"
	"flag"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/differ"
	"github.com/ingotfleet/ingot/differ/differtest"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/view"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	differtest.Golden(t, filepath.Join("testdata", name), got, *update)
}

func fixtureSources() (a, b *view.Mem) {
	ia, ib := differtest.Pair()
	return &view.Mem{Label: "fixture-a", M: ia.M, Files: ia.Files},
		&view.Mem{Label: "fixture-b", M: ib.M, Files: ib.Files}
}

func TestFixtureGolden(t *testing.T) {
	a, b := fixtureSources()
	for _, tc := range []struct {
		name  string
		opts  func(*differ.Options)
		files map[differ.Format]string
	}{
		{"default", func(*differ.Options) {}, map[differ.Format]string{differ.FormatText: "fixture.txt", differ.FormatJSON: "fixture.json"}},
		{"mtime", func(o *differ.Options) { o.Mtime = true; o.Context = 1 }, map[differ.Format]string{differ.FormatText: "fixture-mtime.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := differ.DefaultOptions()
			tc.opts(&opts)
			r, err := differ.Diff(context.Background(), a, b, opts)
			if err != nil {
				t.Fatal(err)
			}
			for f, name := range tc.files {
				var buf bytes.Buffer
				if err := r.Write(&buf, f); err != nil {
					t.Fatal(err)
				}
				golden(t, name, buf.Bytes())
			}
		})
	}
}

// TestDiffRefusesUnsafeManifest: a manifest whose paths escape the root,
// or run through a symlink, is an error naming the source and the path.
func TestDiffRefusesUnsafeManifest(t *testing.T) {
	a, b := fixtureSources()
	for _, tc := range []struct {
		name, path, want string
		typ              images.Type
	}{
		{"dotdot", "../etc/shadow", "unsafe path", images.TypeFile},
		{"through symlink", "bin/sh", "parent ./bin is a link", images.TypeFile},
		{"absolute", "/etc/shadow", "not a clean path", images.TypeFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := &view.Mem{Label: "hostile", M: &images.Manifest{Entries: slices.Clone(b.M.Entries)}, Files: b.Files}
			bad.M.Entries = append(bad.M.Entries, images.Entry{Path: tc.path, Type: tc.typ, Mode: 0o644})
			bad.M.Sort()
			_, err := differ.Diff(context.Background(), a, bad, differ.DefaultOptions())
			if err == nil || !strings.Contains(err.Error(), "hostile") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming the source and saying %q", err, tc.want)
			}
		})
	}
}
