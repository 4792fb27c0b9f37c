package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/images/store/backend"
)

// openStore opens the store: a directory, or a read-only HTTP store when
// the --store value is a URL.
func (a *App) OpenStore(opts ...store.Option) (*store.Store, error) {
	dir := a.StoreDir()
	if strings.HasPrefix(dir, "http://") || strings.HasPrefix(dir, "https://") {
		b, err := backend.HTTPMirrors([]string{dir})
		if err != nil {
			return nil, err
		}
		return store.New(b, opts...), nil
	}
	return store.Open(dir, opts...)
}

// isTarPath tells a REF that names a tar file from a digest or name:tag.
func IsTarPath(ref string) bool {
	if strings.Contains(ref, "/") || compression.CompressionFromName(ref) != compression.None {
		return true
	}
	return strings.HasSuffix(ref, ".tar")
}

// resolveImage turns REF into an image digest, importing a tar path first.
func (a *App) ResolveImage(ctx context.Context, s *store.Store, ref string) (images.Digest, error) {
	if !IsTarPath(ref) {
		return s.Resolve(ctx, ref)
	}
	f, err := os.Open(ref)
	if err != nil {
		return images.Digest{}, fmt.Errorf("image %s: %w", ref, err)
	}
	defer f.Close()
	d, err := s.Import(ctx, f, store.ImportOptions{Name: ref})
	if err != nil {
		return d, fmt.Errorf("importing %s: %w", ref, err)
	}
	a.Log.Debug("imported", "file", ref, "digest", d)
	return d, nil
}

// CacheDir is where downloaded packages are kept.
func (a *App) CacheDir(flag string) string {
	if flag != "" {
		return flag
	}
	if d := a.Getenv("INGOT_CACHE"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/cache/ingot"
	}
	if d := a.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "ingot")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "ingot")
	}
	return filepath.Join(os.TempDir(), "ingot-cache")
}
