package builder

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ingotfleet/ingot/builder/dpkgdb"
	"github.com/ingotfleet/ingot/builder/normalize"
	"github.com/ingotfleet/ingot/internal/glob"
)

// excludeGlob compiles an Exclude or Keep entry (internal/glob's
// dialect, which the spec checks): as the spec format says, a glob ending
// in "/*" also takes whole subtrees, so "/usr/share/doc/*" is the glob
// "usr/share/doc/*/**".
func excludeGlob(g string) (glob.Glob, error) {
	if strings.HasSuffix(g, "/*") {
		g += "/**"
	}
	return glob.Compile(g)
}

func excludeGlobs(gs []string) (glob.Set, error) {
	out := make(glob.Set, 0, len(gs))
	for _, g := range gs {
		c, err := excludeGlob(g)
		if err != nil {
			return nil, fmt.Errorf("applying excludes: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// globMatch reports whether the absolute path p matches the Exclude or
// Keep entry g (false for a glob that does not compile).
func globMatch(g, p string) bool {
	c, err := excludeGlob(g)
	return err == nil && c.Match(p)
}

// applyExcludes removes every path an Exclude glob matches unless a Keep
// glob matches it or something below it, then takes the removed paths out
// of the dpkg file lists and md5sums (so dpkg -S and dpkg --verify agree
// with the image). It returns how many paths it removed.
func applyExcludes(ctx context.Context, root string, excludeGlobList, keepGlobList []string) (int, error) {
	exclude, err := excludeGlobs(excludeGlobList)
	if err != nil {
		return 0, err
	}
	keep, err := excludeGlobs(keepGlobList)
	if err != nil {
		return 0, err
	}
	var walked []string // absolute image paths, pre-order
	excluded := map[string]bool{}
	keepDir := map[string]bool{} // directories holding a kept path
	err = normalize.WalkImage(ctx, root, func(abs, _ string, _ fs.DirEntry) error {
		walked = append(walked, abs)
		if !exclude.Match(abs) {
			return nil
		}
		if keep.Match(abs) {
			for a := path.Dir(abs); a != "/"; a = path.Dir(a) {
				keepDir[a] = true
			}
			return nil
		}
		excluded[abs] = true
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("applying excludes: %w", err)
	}
	removed := map[string]bool{}
	for i := len(walked) - 1; i >= 0; i-- {
		abs := walked[i]
		if !excluded[abs] || keepDir[abs] {
			continue
		}
		if err := os.Remove(filepath.Join(root, abs)); err != nil {
			return 0, fmt.Errorf("applying excludes: %w", err)
		}
		removed[abs] = true
	}
	if len(removed) == 0 {
		return 0, nil
	}
	return len(removed), dpkgdb.RemovePaths(root, removed)
}
