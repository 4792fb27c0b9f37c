package rpm2deb

import (
	"context"
	"testing"

	"github.com/ingotfleet/ingot/builder/rpm2deb/provides"
)

// BenchmarkConvert converts the hello test RPM (x86_64, xz payload, file
// and soname dependencies resolved against the reference Debian root).
func BenchmarkConvert(b *testing.B) {
	in := buildRPM(b, "hello", "")
	root := debianRootDir(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Convert(context.Background(), in, Options{OutDir: b.TempDir(), Resolver: provides.NewRootResolver(root)}); err != nil {
			b.Fatal(err)
		}
	}
}
