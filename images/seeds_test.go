package images_test

import (
	"bytes"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/internal/imagetest"
)

// manifestSeeds extend FuzzParseManifest's corpus with manifests of
// every kind of entry and with near misses.
func manifestSeeds(t testing.TB) map[string][]byte {
	g, _ := imagetest.Golden(t)
	var mtree bytes.Buffer
	g.Write(&mtree, images.FormatMtree)
	h := images.ManifestHeader + "\n"
	return map[string][]byte{
		"sample":      images.SampleManifest(t).Bytes(),
		"golden":      g.Bytes(),
		"mtree-form":  mtree.Bytes(),
		"escapes":     []byte(h + ". type=dir mode=0755 uid=0 gid=0 time=0.000000000\n./a\\040b\\043 type=link mode=0777 uid=0 gid=0 link=\\377\\000x time=0\n"),
		"hardlink-fw": []byte(h + ". type=dir mode=0755 uid=0 gid=0 time=0\n./a type=hardlink link=./b\n./b type=file mode=0644 uid=0 gid=0 size=0 sha256digest=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 time=0\n"),
		"escape-root": []byte(h + ". type=dir mode=0755 uid=0 gid=0 time=0\n./../etc type=dir mode=0755 uid=0 gid=0 time=0\n"),
		"under-link":  []byte(h + ". type=dir mode=0755 uid=0 gid=0 time=0\n./a type=link mode=0777 uid=0 gid=0 link=/ time=0\n./a/b type=dir mode=0755 uid=0 gid=0 time=0\n"),
		"v1":          []byte("#ingot manifest v1\n. type=dir mode=0755 uid=0 gid=0 time=0\n./a-b type=dir mode=0755 uid=0 gid=0 time=0 xattr.user.a=b=AA==\n./a/c type=fifo mode=0644 uid=0 gid=0 time=0\n"),
		"xattr":       []byte(h + ". type=dir mode=0755 uid=0 gid=0 time=-1.000000000 xattr.user.x=AAEC xattr.security.capability=AQAAAgAgAAA=\n"),
	}
}

// TestFuzzSeedCorpus keeps the seeds this file adds to
// testdata/fuzz/FuzzParseManifest in step with manifestSeeds; -update
// rewrites them.
func TestFuzzSeedCorpus(t *testing.T) {
	imagetest.CheckSeeds(t, "FuzzParseManifest", manifestSeeds(t), *images.Update)
}
