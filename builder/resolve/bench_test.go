package resolve

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/debrepo"
	"github.com/ingotfleet/ingot/builder/spec"
)

// syntheticIndex is an archive-sized index: n packages, each depending on
// a few lower-numbered ones (some through alternatives and virtual
// names), every tenth required.
func syntheticIndex(n int) *debrepo.Index {
	var pkgs []*debrepo.Package
	for i := range n {
		var deps []string
		for _, d := range []int{i / 2, i / 3, i / 7} {
			if d < i {
				deps = append(deps, fmt.Sprintf("p%d (>= 1.0)", d))
			}
		}
		if i > 10 {
			deps = append(deps, fmt.Sprintf("missing%d | p%d", i, i-5), fmt.Sprintf("virt%d", i%50))
		}
		p := &debrepo.Package{
			Name: fmt.Sprintf("p%d", i), Version: "1.0-1", Architecture: "amd64", Priority: "optional",
			Depends: strings.Join(deps, ", "), Provides: fmt.Sprintf("virt%d", i%50),
			Filename: fmt.Sprintf("pool/p%d.deb", i), Size: 1, SHA256: strings.Repeat("0", 64),
		}
		if i%10 == 0 {
			p.Priority = "required"
		}
		pkgs = append(pkgs, p)
	}
	return &debrepo.Index{Suites: []debrepo.Suite{{Release: &debrepo.Release{}}}, Packages: pkgs}
}

func BenchmarkResolve(b *testing.B) {
	idx := syntheticIndex(60000) // about bookworm main amd64
	req := Request{Architectures: []string{"amd64"}, Variant: spec.VariantMinbase}
	b.ResetTimer()
	for b.Loop() {
		got, err := Resolve(context.Background(), idx, req)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) < 6000 {
			b.Fatalf("resolved %d packages", len(got))
		}
	}
}
