package rpm_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/ingotfleet/ingot/builder/rpm"
	"github.com/ingotfleet/ingot/builder/rpm/rpmtest"
)

// FuzzReadRPM feeds arbitrary bytes through the RPM header reader, the
// payload decompressors and the cpio reader: errors are fine, panics and
// hangs are not. The seed corpus holds real RPMs (builder/rpm2deb's
// FuzzRPMMetadata reads it too).
func FuzzReadRPM(f *testing.F) {
	f.Add([]byte{0xed, 0xab, 0xee, 0xdb, 3, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := rpm.Read(bytes.NewReader(data), "fuzz.rpm")
		if err != nil {
			return
		}
		p.NEVRA()
		payload, _, err := p.Payload()
		if err != nil {
			return
		}
		defer func() { _ = payload.Close() }()
		files := p.Files()
		cr := rpm.NewCpioReader(io.LimitReader(payload, 1<<20), func(i int) (int64, error) {
			if i < len(files) {
				return files[i].Size % (1 << 20), nil
			}
			return 0, io.ErrUnexpectedEOF
		})
		for i := 0; i < 1000; i++ {
			if _, err := cr.Next(); err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, cr); err != nil {
				return
			}
		}
	})
}

// FuzzCpio reads arbitrary bytes as a cpio archive.
func FuzzCpio(f *testing.F) {
	f.Add(append(rpmtest.NewcMember("./a", 0o100644, []byte("data")), rpmtest.NewcMember("TRAILER!!!", 0, nil)...))
	f.Add(append(rpmtest.StrippedMember(1, []byte("x")), rpmtest.NewcMember("TRAILER!!!", 0, nil)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := rpm.NewCpioReader(bytes.NewReader(data), func(i int) (int64, error) { return int64(i % 64), nil })
		for {
			h, err := cr.Next()
			if err != nil {
				return
			}
			n, err := io.Copy(io.Discard, cr)
			if err != nil {
				return
			}
			if n != h.Size {
				t.Fatalf("member %q: read %d bytes, header says %d", h.Name, n, h.Size)
			}
		}
	})
}
