package differ

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/ingotfleet/ingot/images/view"
)

// Open opens an image given as a directory or a tar file, by what is at
// the path. A tar's dpkg database is kept in memory as it is read, since
// Diff reads it first.
func Open(ctx context.Context, arg string) (view.View, error) {
	fi, err := os.Stat(arg)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return view.OpenDir(ctx, arg)
	}
	if strings.HasSuffix(arg, ".deb") {
		return nil, fmt.Errorf("%s: a package, not an image (see ingot review)", arg)
	}
	return view.OpenTar(ctx, arg, isDpkgMeta)
}
