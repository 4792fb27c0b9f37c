package main

// The builder's step of `ingot demo`: lock and build a small Debian image
// from the embedded spec (demo.yaml), in place of the hand-made tree.

import (
	"context"
	_ "embed"
	"os"
	"path/filepath"

	"github.com/ingotfleet/ingot/builder"
	"github.com/ingotfleet/ingot/builder/debrepo"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
)

//go:embed demo.yaml
var demoSpec []byte

func init() {
	registerDemoStep(demoStep{100, "lock and build a Debian minbase image from the embedded spec", demoBuild, func(d *demo) bool { return d.build }})
}

func demoBuild(ctx context.Context, d *demo) error {
	specPath := filepath.Join(d.dir, "demo.yaml")
	if err := os.WriteFile(specPath, demoSpec, 0o644); err != nil {
		return err
	}
	lockPath := filepath.Join(d.dir, "demo.lock")
	if err := runLock(ctx, d.a, LockOptions{Output: lockPath, AptRoot: "/"}, specPath); err != nil {
		return err
	}
	cache := &debrepo.Cache{Dir: filepath.Join(d.a.CacheDir(""), "debs")}
	p, err := builder.Prepare(ctx, specPath, lockPath, cache, nil)
	if err != nil {
		return err
	}
	if d.store, err = store.Open(filepath.Join(d.dir, "store")); err != nil {
		return err
	}
	prog := newProgress(d.a.Stderr, "auto")
	defer prog.finish()
	// The build directory is inside the demo's scratch folder: the built
	// root stays there, as the tree the later steps change and verify.
	r, err := builder.BuildRoot(ctx, p.Input, builder.Options{WorkDir: d.dir, Progress: prog.show, Log: d.a.Log})
	if err != nil {
		return err
	}
	meta := builder.Meta{Name: "demo", Tag: "latest", IngotVersion: Version(), SpecSHA256: p.SpecSHA256,
		LockSHA256: p.LockSHA256, DownloadURL: builder.DownloadURLs(p.Lock)}
	img, err := builder.Finish(ctx, r, p.Input, meta, d.store, nil, images.CompressNone, prog.show)
	if err != nil {
		return err
	}
	prog.finish()
	d.root, d.digest = r.Dir, img.Digest
	if err := d.store.SetRef(ctx, "demo:latest", d.digest); err != nil {
		return err
	}
	d.say("built image %s (demo:latest): %d paths from %d locked packages, in %s",
		d.digest, len(img.Manifest.Entries), len(p.Lock.Packages), d.root)
	return nil
}
