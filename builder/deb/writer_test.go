package deb_test

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// TestWriterRoundTrip writes a package with the writer in both
// compressions, reads it back with the Reader and has dpkg-deb check it;
// writing twice gives the same bytes.
func TestWriterRoundTrip(t *testing.T) {
	dpkgDeb := testenv.RequireTool(t, "dpkg-deb", "dpkg")
	for _, c := range []deb.Compression{deb.CompressXZ, deb.CompressGzip} {
		t.Run(string(c), func(t *testing.T) {
			build := func() []byte {
				var ctl, data bytes.Buffer
				zw, err := deb.NewCompressor(&ctl, c)
				if err != nil {
					t.Fatal(err)
				}
				members := []deb.ControlMember{
					{Name: "postinst", Mode: 0o755, Data: []byte("#!/bin/sh\n")},
					{Name: "control", Mode: 0o644, Data: []byte("Package: w\nVersion: 1.0-1\nArchitecture: all\nMaintainer: A <a@example.org>\nDescription: test\n")},
				}
				if err := deb.WriteControlTar(zw, members, 1700000000); err != nil {
					t.Fatal(err)
				}
				if err := zw.Close(); err != nil {
					t.Fatal(err)
				}
				zw, err = deb.NewCompressor(&data, c)
				if err != nil {
					t.Fatal(err)
				}
				tw := tar.NewWriter(zw)
				tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})
				tw.WriteHeader(&tar.Header{Name: "./hello", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3})
				tw.Write([]byte("hi\n"))
				if err := tw.Close(); err != nil {
					t.Fatal(err)
				}
				if err := zw.Close(); err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				if err := deb.WriteDeb(&out, c, ctl.Bytes(), bytes.NewReader(data.Bytes()), int64(data.Len()), 1700000000); err != nil {
					t.Fatal(err)
				}
				return out.Bytes()
			}
			b := build()
			if !bytes.Equal(b, build()) {
				t.Fatal("two writes of the same package differ")
			}
			p := filepath.Join(t.TempDir(), "w.deb")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			ctl, entries, err := readAll(t, p)
			if err != nil {
				t.Fatal(err)
			}
			if ctl.Package() != "w" || string(ctl.Files["postinst"].Data) != "#!/bin/sh\n" || ctl.Files["postinst"].Mode != 0o755 {
				t.Errorf("control read back: %+v", ctl.Fields)
			}
			if len(entries) != 2 || entries[0].name != "./" || entries[1].name != "./hello" || entries[1].body != "hi\n" {
				t.Errorf("data entries %+v", entries)
			}
			if out, err := exec.Command(dpkgDeb, "--info", p).CombinedOutput(); err != nil || !strings.Contains(string(out), "Package: w") {
				t.Errorf("dpkg-deb --info: %v\n%s", err, out)
			}
		})
	}
}
