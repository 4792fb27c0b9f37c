package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/delta"
)

// A directory imports as the same image as its tar would, and a delta
// that does not rebuild its name is a problem Verify reports.
func TestImportDirAndVerifyDeltas(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 3*MaxChunk/16)
	os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/lib/big"), big, 0o644)
	os.WriteFile(filepath.Join(root, "motd"), []byte("hi\n"), 0o644)
	os.Link(filepath.Join(root, "motd"), filepath.Join(root, "motd2"))
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, m, err := s.ImportDir(ctx, root, images.WalkOptions{NumericOwner: true})
	if err != nil {
		t.Fatal(err)
	}
	want, err := images.WalkDir(ctx, root, images.WalkOptions{NumericOwner: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d != want.Digest() || m.Digest() != d {
		t.Fatalf("ImportDir digest %s, WalkDir says %s", d, want.Digest())
	}
	if probs, err := s.VerifyImage(ctx, d, nil); err != nil || len(probs) != 0 {
		t.Fatalf("VerifyImage: %v %v", probs, err)
	}
	if _, _, err := s.ImportDir(ctx, filepath.Join(root, "motd"), images.WalkOptions{}); err == nil {
		t.Fatal("ImportDir of a file succeeded")
	}

	// A good delta and a forged one (its bytes rebuild other content).
	nw := bytes.Clone(big)
	copy(nw[len(nw)/2:], "changed")
	if _, err := s.PutDelta(ctx, big, nw); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutFile(ctx, bytes.NewReader(nw)); err != nil {
		t.Fatal(err)
	}
	forged, _ := delta.Encode(big, []byte("other"), delta.Level)
	bad := DeltaHandle(images.Sum(big), images.Sum([]byte("claimed")))
	if err := s.Backend().Put(ctx, bad, forged, true); err != nil {
		t.Fatal(err)
	}
	probs, err := s.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(probs) != 1 || probs[0].What != bad.Path() || !errors.Is(probs[0].Err, ErrCorrupt) {
		t.Fatalf("Verify = %v; want one problem: %s corrupt", probs, bad.Path())
	}
}
