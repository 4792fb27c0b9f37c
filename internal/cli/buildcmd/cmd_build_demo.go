package buildcmd

// The builder's step of `ingot demo`: lock and build a small Debian image
// from the embedded spec (demo.yaml), in place of the hand-made tree.

import (
	"context"
	_ "embed"
	"os"
	"path/filepath"

	"github.com/ingotfleet/ingot/builder"
	"github.com/ingotfleet/ingot/builder/debrepo"
	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/cli"
)

//go:embed demo.yaml
var demoSpec []byte

func init() {
	cli.RegisterDemoStep(cli.DemoStep{Rank: 100, Name: "lock and build a Debian minbase image from the embedded spec", Run: demoBuild, When: func(d *cli.Demo) bool { return d.Build }})
}

func demoBuild(ctx context.Context, d *cli.Demo) error {
	specPath := filepath.Join(d.Dir, "demo.yaml")
	if err := os.WriteFile(specPath, demoSpec, 0o644); err != nil {
		return err
	}
	lockPath := filepath.Join(d.Dir, "demo.lock")
	if err := runLock(ctx, d.App, LockOptions{Output: lockPath, AptRoot: "/"}, specPath); err != nil {
		return err
	}
	cache := &debrepo.Cache{Dir: filepath.Join(d.App.CacheDir(""), "debs")}
	p, err := builder.Prepare(ctx, specPath, lockPath, cache, nil)
	if err != nil {
		return err
	}
	if d.Store, err = store.Open(filepath.Join(d.Dir, "store")); err != nil {
		return err
	}
	prog := newProgress(d.App.Stderr, "auto")
	defer prog.finish()
	// The build directory is inside the demo's scratch folder: the built
	// root stays there, as the tree the later steps change and verify.
	r, err := builder.BuildRoot(ctx, p.Input, builder.Options{WorkDir: d.Dir, Progress: prog.show, Log: d.App.Log})
	if err != nil {
		return err
	}
	meta := builder.Meta{Name: "demo", Tag: "latest", IngotVersion: cli.Version(), SpecSHA256: p.SpecSHA256,
		LockSHA256: p.LockSHA256, DownloadURL: builder.DownloadURLs(p.Lock)}
	img, err := builder.Finish(ctx, r, p.Input, meta, d.Store, nil, compression.None, prog.show)
	if err != nil {
		return err
	}
	prog.finish()
	d.Root, d.Digest = r.Dir, img.Digest
	if err := d.Store.SetRef(ctx, "demo:latest", d.Digest); err != nil {
		return err
	}
	d.Say("built image %s (demo:latest): %d paths from %d locked packages, in %s",
		d.Digest, len(img.Manifest.Entries), len(p.Lock.Packages), d.Root)
	return nil
}
