package images_test

import (
	"bytes"
	"context"
	"os/exec"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/imagetar"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// TestWalkDirTarAgree: a tree walked, and the same tree archived by
// imagetar.Write, GNU tar and bsdtar and read back, give the same manifest.
func TestWalkDirTarAgree(t *testing.T) {
	gnutar := testenv.RequireTool(t, "tar", "tar")
	bsdtar := testenv.RequireTool(t, "bsdtar", "libarchive-tools")
	root := images.MakeTree(t)
	ctx := context.Background()
	walked, err := images.WalkDir(ctx, root, images.WalkOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var own bytes.Buffer
	if err := imagetar.Write(ctx, &own, walked, images.DirOpener(root)); err != nil {
		t.Fatal(err)
	}
	archives := map[string][]byte{"WriteTar": own.Bytes()}
	for name, args := range map[string][]string{
		// The flags that make the peers' archives carry everything a manifest holds.
		"gnutar": {gnutar, "--create", "--file", "-", "--directory", root, "--format=pax", "--numeric-owner",
			"--xattrs", "--xattrs-include=*", "--sort=name", "."},
		"gnutar.zst": {gnutar, "--create", "--file", "-", "--directory", root, "--format=pax", "--numeric-owner",
			"--xattrs", "--xattrs-include=*", "--zstd", "."},
		"bsdtar": {bsdtar, "--create", "--file", "-", "--directory", root, "--format", "pax", "--numeric-owner", "--xattrs", "."},
		// Written to a pipe, bsdtar pads even compressed output to 10240-byte records.
		"bsdtar.gz":  {bsdtar, "--create", "--gzip", "--file", "-", "--directory", root, "--format", "pax", "--xattrs", "."},
		"bsdtar.zst": {bsdtar, "--create", "--zstd", "--file", "-", "--directory", root, "--format", "pax", "--xattrs", "."},
	} {
		var out, stderr bytes.Buffer
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, stderr.Bytes())
		}
		archives[name] = out.Bytes()
	}
	for name, b := range archives {
		t.Run(name, func(t *testing.T) {
			m, err := imagetar.Read(ctx, bytes.NewReader(b), imagetar.Options{Name: name}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := images.Compare(walked, m, images.CompareOptions{}); len(d) > 0 {
				for _, x := range d {
					t.Errorf("%s %s %v\n  walked: %+v\n  tar:    %+v", x.Kind, x.Path, x.Keys, x.Old, x.New)
				}
			}
			if !bytes.Equal(walked.Bytes(), m.Bytes()) {
				t.Error("manifests print differently")
			}
		})
	}
}
