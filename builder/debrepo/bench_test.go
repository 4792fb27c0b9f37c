package debrepo

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkParsePackages reads an archive-sized Packages index (60,000
// paragraphs with multi-line Descriptions), as `ingot lock` does for
// Debian's main component.
func BenchmarkParsePackages(b *testing.B) {
	var buf bytes.Buffer
	for i := range 60000 {
		fmt.Fprintf(&buf, "Package: p%d\nVersion: 1.%d-1\nArchitecture: amd64\nMaintainer: A <a@example.org>\n"+
			"Depends: libc6 (>= 2.36), p%d (>= 1.0) | virt%d\nDescription: package %d\n a longer text\n .\n over lines\n"+
			"Filename: pool/main/p/p%d_1.0-1_amd64.deb\nSize: 1234\nSHA256: %064x\n\n", i, i, i/2, i%50, i, i, i)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		n := 0
		if err := ParsePackages(bytes.NewReader(data), "Packages", func(*Package) error { n++; return nil }); err != nil || n != 60000 {
			b.Fatal(n, err)
		}
	}
}
