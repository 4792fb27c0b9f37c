package store

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// BenchmarkImportDebian imports the reference Debian root tar into a
// fresh store (go test -bench ImportDebian -cpuprofile cpu.out).
func BenchmarkImportDebian(b *testing.B) {
	tarPath := testenv.DebianRootTar(b)
	fi, err := os.Stat(tarPath)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	for b.Loop() {
		s, err := Open(filepath.Join(b.TempDir(), "store"))
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.Open(tarPath)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Import(context.Background(), f, ImportOptions{}); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkExportDebian exports the reference Debian root as .tar.zst.
func BenchmarkExportDebian(b *testing.B) {
	tarPath := testenv.DebianRootTar(b)
	s, err := Open(filepath.Join(b.TempDir(), "store"))
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(tarPath)
	if err != nil {
		b.Fatal(err)
	}
	d, err := s.Import(context.Background(), f, ImportOptions{})
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(tarPath)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for b.Loop() {
		if err := s.Export(context.Background(), d, io.Discard, compression.Zstd); err != nil {
			b.Fatal(err)
		}
	}
}
