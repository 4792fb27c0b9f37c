package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
)

func init() { register(newDemoCommand) }

// demo is the state the demo's steps share.
type demo struct {
	a      *App
	dir    string // scratch folder: root, tars, store
	root   string // the small root tree
	store  *store.Store
	digest images.Digest // the image imported from the tree
	tar    string        // the tar the image was imported from
	build  bool          // build a Debian image rather than make a small tree
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.a.Stdout, format+"\n", args...) }

// demoStep is one step of `ingot demo`. Steps run in order of rank;
// later areas (builder, pusher) add theirs from their own files with
// registerDemoStep, so the demo grows without editing this one.
type demoStep struct {
	rank int
	name string
	run  func(ctx context.Context, d *demo) error
	when func(d *demo) bool // nil: always
}

var demoSteps []demoStep

func registerDemoStep(s demoStep) { demoSteps = append(demoSteps, s) }

func init() {
	registerDemoStep(demoStep{100, "make a small root tree", demoMakeTree, notBuilding})
	registerDemoStep(demoStep{200, "import it into a store", demoImport, notBuilding})
	registerDemoStep(demoStep{300, "export it and import the export again", demoRoundTrip, nil})
	registerDemoStep(demoStep{400, "verify the store and the tree against the image", demoVerify, nil})
}

func newDemoCommand(a *App) *cobra.Command {
	var keep, tree bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Show ingot's main job on a small built-in example",
		Long: `Demo runs ingot's main job on a built-in example, in a scratch folder
removed afterwards unless --keep:

  1. lock and build a small Debian image (minbase, no docs) from an embedded
     spec and the Debian mirror, into a fresh store (as root; without root,
     or with --tree, a small hand-made tree is imported instead);
  2. export it as a tar, import that again and show the digests match;
  3. verify the store and the built tree against the image;
  4. sign it, start three agents on loopback (mutual TLS, temporary roots)
     and push it to them;
  5. change the image, precompute its sub-file deltas and push again,
     showing what changed and which triggers fired.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "ingot-demo-")
			if err != nil {
				return err
			}
			if keep {
				defer fmt.Fprintf(a.Stdout, "kept %s\n", dir)
			} else {
				defer os.RemoveAll(dir)
			}
			d := &demo{a: a, dir: dir, build: !tree && os.Geteuid() == 0}
			if !tree && !d.build {
				d.say("(not root: a small hand-made tree stands in for the Debian image; building needs root)")
			}
			defer func() {
				if d.store != nil {
					d.store.Close()
				}
			}()
			steps := slices.DeleteFunc(slices.Clone(demoSteps), func(s demoStep) bool { return s.when != nil && !s.when(d) })
			slices.SortStableFunc(steps, func(x, y demoStep) int { return x.rank - y.rank })
			for i, s := range steps {
				d.say("== %d/%d %s", i+1, len(steps), s.name)
				if err := s.run(cmd.Context(), d); err != nil {
					return fmt.Errorf("demo step %q: %w", s.name, err)
				}
			}
			d.say("== done: all %d steps passed", len(steps))
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the scratch folder (tree, tars, store)")
	cmd.Flags().BoolVar(&tree, "tree", false, "use a small hand-made tree instead of building a Debian image (no root or network needed)")
	return cmd
}

func notBuilding(d *demo) bool { return !d.build }

func demoMakeTree(_ context.Context, d *demo) error {
	d.root = filepath.Join(d.dir, "root")
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
		p := filepath.Join(d.root, f.path)
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
		if err := os.MkdirAll(filepath.Join(d.root, dir), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(d.root, "tmp"), 0o1777); err != nil {
		return err
	}
	if err := os.Symlink("hello", filepath.Join(d.root, "usr/bin/hi")); err != nil {
		return err
	}
	if err := os.Link(filepath.Join(d.root, "usr/bin/hello"), filepath.Join(d.root, "usr/bin/hello-again")); err != nil {
		return err
	}
	m, err := images.WalkDir(context.Background(), d.root, images.WalkOptions{}, nil)
	if err != nil {
		return err
	}
	d.say("made %s: %d paths (files, a symlink, a hardlink, a setuid program, a sticky dir)", d.root, len(m.Entries))
	return nil
}

func demoImport(ctx context.Context, d *demo) error {
	m, err := images.WalkDir(ctx, d.root, images.WalkOptions{}, func(_ *images.Entry, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err != nil {
		return err
	}
	d.tar = filepath.Join(d.dir, "tree.tar")
	f, err := os.Create(d.tar)
	if err != nil {
		return err
	}
	err = images.WriteTar(ctx, f, m, images.DirOpener(d.root))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	d.store, err = store.Open(filepath.Join(d.dir, "store"))
	if err != nil {
		return err
	}
	in, err := os.Open(d.tar)
	if err != nil {
		return err
	}
	defer in.Close()
	d.digest, err = d.store.Import(ctx, in, store.ImportOptions{Name: d.tar})
	if err != nil {
		return err
	}
	if err := d.store.SetRef(ctx, "demo:latest", d.digest); err != nil {
		return err
	}
	d.say("wrote the tree as a tar, imported it: image %s (demo:latest)", d.digest)
	d.say("the manifest, one line per path:")
	return m.Write(d.a.Stdout, images.FormatIngot)
}

func demoRoundTrip(ctx context.Context, d *demo) error {
	out := filepath.Join(d.dir, "export.tar.zst")
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	err = d.store.Export(ctx, d.digest, f, images.CompressZstd)
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
	again, err := d.store.Import(ctx, in, store.ImportOptions{Name: out})
	if err != nil {
		return err
	}
	d.say("exported to %s and imported that: image %s", filepath.Base(out), again)
	if again != d.digest {
		return fmt.Errorf("round trip changed the image: %s became %s", d.digest, again)
	}
	d.say("same digest: the round trip tree → store → tar → store is exact")
	return nil
}

func demoVerify(ctx context.Context, d *demo) error {
	probs, err := d.store.VerifyImage(ctx, d.digest, nil)
	if err != nil {
		return err
	}
	if len(probs) > 0 {
		return fmt.Errorf("store damaged: %v", probs[0])
	}
	d.say("every object of the image checks against its hash")
	m, err := d.store.Manifest(ctx, d.digest)
	if err != nil {
		return err
	}
	live, err := images.WalkDir(ctx, d.root, images.WalkOptions{}, func(_ *images.Entry, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err != nil {
		return err
	}
	if deltas := images.Compare(m, live, images.CompareOptions{}); len(deltas) > 0 {
		writeMtreeReport(d.a.Stdout, deltas)
		return fmt.Errorf("the tree differs from the image in %d paths", len(deltas))
	}
	d.say("the tree matches the image (like `ingot image verify demo:latest --root %s`)", d.root)
	return nil
}
