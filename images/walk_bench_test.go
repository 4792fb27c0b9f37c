package images_test

import (
	"context"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/internal/imagetest"
)

// BenchmarkWalkDir walks imagetest.BenchTree, hashing every file.
func BenchmarkWalkDir(b *testing.B) {
	dir := b.TempDir()
	b.SetBytes(imagetest.BenchTree(b, dir))
	for b.Loop() {
		if _, err := images.WalkDir(context.Background(), dir, images.WalkOptions{}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
