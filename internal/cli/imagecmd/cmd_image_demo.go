package imagecmd

// The image steps of `ingot demo`: make a small tree and import it (or
// take the built image), export and import it again, verify it.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/images/imagetar"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/cli"
)

func init() {
	cli.RegisterDemoStep(cli.DemoStep{Rank: 100, Name: "make a small root tree", Run: demoMakeTree, When: notBuilding})
	cli.RegisterDemoStep(cli.DemoStep{Rank: 200, Name: "import it into a store", Run: demoImport, When: notBuilding})
	cli.RegisterDemoStep(cli.DemoStep{Rank: 300, Name: "export it and import the export again", Run: demoRoundTrip, When: nil})
	cli.RegisterDemoStep(cli.DemoStep{Rank: 400, Name: "verify the store and the tree against the image", Run: demoVerify, When: nil})
}

func notBuilding(d *cli.Demo) bool { return !d.Build }

func demoMakeTree(_ context.Context, d *cli.Demo) error {
	d.Root = filepath.Join(d.Dir, "root")
	files := []struct {
		path string
		mode os.FileMode
		data string
	}{
		{"etc/hostname", 0o644, "golden\n"},
		{"etc/os-release", 0o644, "NAME=\"ingot demo\"\nID=demo\n"},
		{"usr/bin/hello", 0o755, "#!/bin/sh\necho hello from a golden image\n"},
		{"usr/bin/passwd", 0o4755, "#!/bin/sh\necho setuid demo\n"},
		{"usr/share/doc/big.txt", 0o644, string(bytes.Repeat([]byte("a large file, cut into content-defined chunks\n"), 20000))},
	}
	for _, f := range files {
		p := filepath.Join(d.Root, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(f.data), 0o600); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil { // after the write: umask does not apply
			return err
		}
	}
	for _, dir := range []string{"tmp", "var/lib"} {
		if err := os.MkdirAll(filepath.Join(d.Root, dir), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(d.Root, "tmp"), 0o1777); err != nil {
		return err
	}
	if err := os.Symlink("hello", filepath.Join(d.Root, "usr/bin/hi")); err != nil {
		return err
	}
	if err := os.Link(filepath.Join(d.Root, "usr/bin/hello"), filepath.Join(d.Root, "usr/bin/hello-again")); err != nil {
		return err
	}
	m, err := images.WalkDir(context.Background(), d.Root, images.WalkOptions{}, nil)
	if err != nil {
		return err
	}
	d.Say("made %s: %d paths (files, a symlink, a hardlink, a setuid program, a sticky dir)", d.Root, len(m.Entries))
	return nil
}

func demoImport(ctx context.Context, d *cli.Demo) error {
	m, err := images.WalkDir(ctx, d.Root, images.WalkOptions{}, func(_ *images.Entry, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err != nil {
		return err
	}
	d.Tar = filepath.Join(d.Dir, "tree.tar")
	f, err := os.Create(d.Tar)
	if err != nil {
		return err
	}
	err = imagetar.Write(ctx, f, m, images.DirOpener(d.Root))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	d.Store, err = store.Open(filepath.Join(d.Dir, "store"))
	if err != nil {
		return err
	}
	in, err := os.Open(d.Tar)
	if err != nil {
		return err
	}
	defer in.Close()
	d.Digest, err = d.Store.Import(ctx, in, store.ImportOptions{Name: d.Tar})
	if err != nil {
		return err
	}
	if err := d.Store.SetRef(ctx, "demo:latest", d.Digest); err != nil {
		return err
	}
	d.Say("wrote the tree as a tar, imported it: image %s (demo:latest)", d.Digest)
	d.Say("the manifest, one line per path:")
	return m.Write(d.App.Stdout, images.FormatIngot)
}

func demoRoundTrip(ctx context.Context, d *cli.Demo) error {
	out := filepath.Join(d.Dir, "export.tar.zst")
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	err = d.Store.Export(ctx, d.Digest, f, compression.Zstd)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	in, err := os.Open(out)
	if err != nil {
		return err
	}
	defer in.Close()
	again, err := d.Store.Import(ctx, in, store.ImportOptions{Name: out})
	if err != nil {
		return err
	}
	d.Say("exported to %s and imported that: image %s", filepath.Base(out), again)
	if again != d.Digest {
		return fmt.Errorf("round trip changed the image: %s became %s", d.Digest, again)
	}
	d.Say("same digest: the round trip tree → store → tar → store is exact")
	return nil
}

func demoVerify(ctx context.Context, d *cli.Demo) error {
	probs, err := d.Store.VerifyImage(ctx, d.Digest, nil)
	if err != nil {
		return err
	}
	if len(probs) > 0 {
		return fmt.Errorf("store damaged: %v", probs[0])
	}
	d.Say("every object of the image checks against its hash")
	m, err := d.Store.Manifest(ctx, d.Digest)
	if err != nil {
		return err
	}
	live, err := images.WalkDir(ctx, d.Root, images.WalkOptions{}, func(_ *images.Entry, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err != nil {
		return err
	}
	if deltas := images.Compare(m, live, images.CompareOptions{}); len(deltas) > 0 {
		if err := writeMtreeReport(d.App.Stdout, deltas); err != nil {
			return err
		}
		return fmt.Errorf("the tree differs from the image in %d paths", len(deltas))
	}
	d.Say("the tree matches the image (like `ingot image verify demo:latest --root %s`)", d.Root)
	return nil
}
