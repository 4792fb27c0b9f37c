package rpm2deb

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/rpm"
	"github.com/ingotfleet/ingot/builder/rpm2deb/debmap"
)

// FuzzRPMMetadata reads arbitrary bytes as an RPM and maps its changelog
// and dependencies: errors are fine, panics and hangs are not. The seeds
// are builder/rpm's FuzzReadRPM corpus, real RPMs among them.
func FuzzRPMMetadata(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("..", "rpm", "testdata", "fuzz", "FuzzReadRPM", "*"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds in ../rpm/testdata/fuzz/FuzzReadRPM (%v)", err)
	}
	for _, s := range seeds {
		f.Add(readCorpusBytes(f, s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := rpm.Read(bytes.NewReader(data), "fuzz.rpm")
		if err != nil {
			return
		}
		if entries, err := readChangelog(p); err == nil {
			debmap.WriteChangelog(entries, debmap.ChangelogOptions{Package: "p", Version: "1.0"})
		}
		for _, tags := range [][3]int{{rpm.TagRequireName, rpm.TagRequireFlags, rpm.TagRequireVersion}, {rpm.TagProvideName, rpm.TagProvideFlags, rpm.TagProvideVersion}} {
			if deps, err := readDeps(p, tags[0], tags[1], tags[2]); err == nil {
				for _, d := range deps {
					mapVersioned(debmap.DebName(d.Name), d)
				}
			}
		}
	})
}

// readCorpusBytes reads a one-value []byte fuzz corpus file ("go test
// fuzz v1").
func readCorpusBytes(f *testing.F, name string) []byte {
	b, err := os.ReadFile(name)
	if err != nil {
		f.Fatal(err)
	}
	head, lit, _ := strings.Cut(string(b), "\n")
	lit, ok := strings.CutPrefix(strings.TrimSpace(lit), "[]byte(")
	lit, ok2 := strings.CutSuffix(lit, ")")
	v, err := strconv.Unquote(lit)
	if head != "go test fuzz v1" || !ok || !ok2 || err != nil {
		f.Fatalf("%s: not a one-value []byte corpus file (%v)", name, err)
	}
	return []byte(v)
}
