package review_test

import (
	"bytes"
	"context"
	"flag"
	"path/filepath"
	"testing"

	"github.com/ingotfleet/ingot/differ"
	"github.com/ingotfleet/ingot/differ/differtest"
	"github.com/ingotfleet/ingot/differ/review"
	"github.com/ingotfleet/ingot/images/view"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestBuildFixtureGolden reviews the differ's fixture pair held in memory
// (no root, no sandbox) as the upgrade of libfoo1, and checks the text
// and JSON reports byte for byte.
func TestBuildFixtureGolden(t *testing.T) {
	ia, ib := differtest.Pair()
	a := &view.Mem{Label: "fixture-a", M: ia.M, Files: ia.Files}
	b := &view.Mem{Label: "fixture-b", M: ib.M, Files: ib.Files}
	pkg := &review.DebInfo{Name: "libfoo1", Version: "1.1-1", Architecture: "amd64", Conffiles: []string{"/etc/foo.conf"},
		Scripts: []review.Script{{Name: "postinst", Text: "#!/bin/sh\nset -e\n\nldconfig  \n"}}}
	rv, err := review.Build(context.Background(), a, b, pkg, differ.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for f, name := range map[differ.Format]string{differ.FormatText: "fixture-review.txt", differ.FormatJSON: "fixture-review.json"} {
		var buf bytes.Buffer
		if err := rv.Write(&buf, f); err != nil {
			t.Fatal(err)
		}
		differtest.Golden(t, filepath.Join("testdata", name), buf.Bytes(), *update)
	}
	if rv.BaseVersion != "1.0-1" || len(rv.Changelog) == 0 {
		t.Errorf("base version %q, %d changelog entries; want 1.0-1 and the entries since", rv.BaseVersion, len(rv.Changelog))
	}
}
