package compression

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images/internal/imagetest"
	"github.com/ingotfleet/ingot/internal/testenv"
)

func compress(t testing.TB, b []byte, c Compression) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := NewCompressor(&out, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func decompress(t *testing.T, b []byte) ([]byte, Compression, error) {
	t.Helper()
	rc, c, err := NewDecompressor(bytes.NewReader(b))
	if err != nil {
		return nil, c, err
	}
	defer rc.Close()
	out, err := io.ReadAll(rc)
	return out, c, err
}

func TestCompressionRoundTrip(t *testing.T) {
	data := imagetest.SampleData(3 << 20)
	for _, c := range []Compression{None, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			z := compress(t, data, c)
			if c != None && len(z) >= len(data)/2 {
				t.Errorf("%s: %d bytes from %d: not compressed", c, len(z), len(data))
			}
			cases := map[string][]byte{
				"one":            z,
				"padded":         append(bytes.Clone(z), make([]byte, 10240-len(z)%10240)...),
				"concatenated":   append(bytes.Clone(z), compress(t, []byte("more"), c)...),
				"trailing-zeros": append(bytes.Clone(z), 0, 0, 0),
			}
			for name, in := range cases {
				out, got, err := decompress(t, in)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				want := data
				switch {
				case name == "concatenated":
					want = append(bytes.Clone(data), "more"...)
				case c == None && name != "one":
					want = in // a plain stream is whatever it holds
				}
				if got != c || !bytes.Equal(out, want) {
					t.Fatalf("%s: detected %s, %d bytes out, want %s and %d", name, got, len(out), c, len(want))
				}
			}
			if c == None {
				return
			}
			_, _, err := decompress(t, append(bytes.Clone(z), "garbage"...))
			if !errors.Is(err, ErrTrailingGarbage) {
				t.Errorf("trailing garbage: got %v", err)
			}
		})
	}
}

// TestCompressorDeterministic: the same input gives the same bytes
// whatever the number of CPUs, and the peer tools read them.
func TestCompressorDeterministic(t *testing.T) {
	data := imagetest.SampleData(9 << 20) // several zstd blocks and windows
	for _, c := range []Compression{Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			prev := runtime.GOMAXPROCS(1)
			one := compress(t, data, c)
			runtime.GOMAXPROCS(8)
			many := compress(t, data, c)
			runtime.GOMAXPROCS(prev)
			if !bytes.Equal(one, many) {
				t.Fatal("output depends on GOMAXPROCS")
			}
			tool := map[Compression][2]string{Gzip: {"gzip", "gzip"}, Zstd: {"zstd", "zstd"}}[c]
			cmd := exec.Command(testenv.RequireTool(t, tool[0], tool[1]), "-dc")
			cmd.Stdin = bytes.NewReader(one)
			out, err := cmd.Output()
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("%s -dc: %v (%d bytes, want %d)", tool[0], err, len(out), len(data))
			}
		})
	}
	// The gzip header holds no name, no mtime and OS 255.
	z := compress(t, []byte("x"), Gzip)
	if z[3] != 0 || !bytes.Equal(z[4:8], []byte{0, 0, 0, 0}) || z[9] != 255 { // FLG, MTIME, OS
		t.Fatalf("gzip header % x", z[:10])
	}
}

// TestDecompressPeerTools: streams made by gzip, zstd and bsdtar
// (multi-threaded zstd too) read back.
func TestDecompressPeerTools(t *testing.T) {
	data := imagetest.SampleData(1 << 20)
	in := t.TempDir() + "/data"
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"gzip", "-9c", in},
		{"zstd", "-qc", "-19", in},
		{"zstd", "-qc", "-T4", "--long", "--no-check", in},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			p := testenv.RequireTool(t, args[0], args[0])
			out, err := exec.Command(p, args[1:]...).Output()
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := decompress(t, out)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%v, %d bytes", err, len(got))
			}
		})
	}
}

func TestDetectCompression(t *testing.T) {
	tests := []struct {
		in   string
		want Compression
		err  string
	}{
		{"", None, ""},
		{"\x1f", None, ""},
		{"\x1f\x8b\x08", Gzip, ""},
		{"\x28\xb5\x2f\xfd", Zstd, ""},
		{"./etc/passwd\x00", None, ""},
		{"\xfd7zXZ\x00", None, "xz"},
		{"BZh91AY", None, "bzip2"},
	}
	for _, tt := range tests {
		got, err := DetectCompression(bufio.NewReader(strings.NewReader(tt.in)))
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%q: got %s, %v; want %s, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestCompressionFromName(t *testing.T) {
	for name, want := range map[string]Compression{
		"a.tar": None, "a": None, "a.tar.gz": Gzip, "A.TGZ": Gzip,
		"a.tar.zst": Zstd, "a.tzst": Zstd, "a.tar.zstd": Zstd, "a.tar.xz": None,
	} {
		if got := CompressionFromName(name); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}
