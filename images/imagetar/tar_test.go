package imagetar

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/images/internal/counting"
	"github.com/ingotfleet/ingot/images/internal/imagetest"
	"github.com/ingotfleet/ingot/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// te is one entry of a tar built by a test.
type te struct {
	name     string
	typ      byte
	link     string
	body     string
	mode     int64
	uid, gid int
	pax      map[string]string
}

func file(name, body string) te  { return te{name: name, typ: tar.TypeReg, body: body} }
func dir(name string) te         { return te{name: name, typ: tar.TypeDir} }
func symlink(name, to string) te { return te{name: name, typ: tar.TypeSymlink, link: to} }
func hardlink(name, to string) te {
	return te{name: name, typ: tar.TypeLink, link: to}
}

// buildTar writes entries as a tar with archive/tar, in the given format.
func buildTar(t testing.TB, format tar.Format, entries ...te) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: mode, Uid: e.uid, Gid: e.gid,
			Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0), Format: format, PAXRecords: e.pax}
		if e.typ == tar.TypeChar || e.typ == tar.TypeBlock {
			h.Devmajor, h.Devminor = 1, 3
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("building tar: %v", err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func compress(t testing.TB, b []byte, c compression.Compression) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := compression.NewCompressor(&out, c)
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

// flip returns b with one byte changed at position i (negative from the end).
func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	if i < 0 {
		i += len(c)
	}
	c[i] ^= 0x55
	return c
}

func TestReadTarRefuses(t *testing.T) {
	plain := buildTar(t, tar.FormatPAX, dir("./"), dir("./etc/"), file("./etc/passwd", strings.Repeat("root:x:0:0::/root:/bin/sh\n", 200)))
	gz := compress(t, plain, compression.Gzip)
	zst := compress(t, plain, compression.Zstd)
	tests := []struct {
		name string
		tar  []byte
		want []string // substrings of the error
	}{
		{"dotdot", buildTar(t, tar.FormatPAX, dir("./"), file("./a/../../etc/shadow", "x")),
			[]string{`entry 2 "./a/../../etc/shadow"`, "climbs out"}},
		{"dotdot-hardlink-target", buildTar(t, tar.FormatPAX, file("a", "x"), hardlink("b", "../a")),
			[]string{`entry 2 "b"`, "hardlink target", "climbs out"}},
		{"absolute", buildTar(t, tar.FormatPAX, file("/etc/passwd", "x")),
			[]string{`entry 1 "/etc/passwd"`, "absolute"}},
		{"symlink-then-through", buildTar(t, tar.FormatPAX, dir("./"), symlink("./etc", "/etc"), file("./etc/passwd", "pwned")),
			[]string{`entry 3 "./etc/passwd"`, "parent ./etc is a link (entry 2)"}},
		{"symlink-then-deep", buildTar(t, tar.FormatGNU, symlink("a", "/"), file("a/b/c/d", "pwned")),
			[]string{`entry 2 "a/b/c/d"`, "parent ./a is a link"}},
		{"file-then-under", buildTar(t, tar.FormatPAX, file("a", "x"), file("a/b", "y")),
			[]string{`entry 2 "a/b"`, "parent ./a is a file"}},
		{"hardlink-to-missing", buildTar(t, tar.FormatPAX, hardlink("a", "etc/shadow")),
			[]string{`entry 1 "a"`, "not earlier in the archive"}},
		{"hardlink-to-later", buildTar(t, tar.FormatPAX, hardlink("a", "b"), file("b", "x")),
			[]string{`entry 1 "a"`, "not earlier"}},
		{"hardlink-to-dir", buildTar(t, tar.FormatPAX, dir("d"), hardlink("a", "d")),
			[]string{`entry 2 "a"`, "a dir, not a regular file"}},
		{"hardlink-to-symlink", buildTar(t, tar.FormatPAX, symlink("s", "/etc/shadow"), hardlink("a", "s")),
			[]string{`entry 2 "a"`, "a link, not a regular file"}},
		{"duplicate", buildTar(t, tar.FormatPAX, file("a", "x"), file("./a", "y")),
			[]string{`entry 2 "./a"`, "duplicate path: entry 1"}},
		{"file-over-implied-dir", buildTar(t, tar.FormatPAX, file("a/b", "x"), file("a", "y")),
			[]string{`entry 2 "a"`, "after entries under it"}},
		{"root-not-dir", buildTar(t, tar.FormatPAX, file(".", "")),
			[]string{`entry 1 "."`, "root must be a directory"}},
		{"unknown-type", buildTar(t, tar.FormatGNU, te{name: "v", typ: tar.TypeGNULongName + 1}),
			[]string{`entry 1 "v"`, "unsupported entry type"}},
		{"empty-symlink", buildTar(t, tar.FormatPAX, symlink("s", "")),
			[]string{`entry 1 "s"`, "symlink target"}},
		{"bad-libarchive-xattr", buildTar(t, tar.FormatPAX, te{name: "f", typ: tar.TypeReg, pax: map[string]string{"LIBARCHIVE.xattr.user.x": "!!!"}}),
			[]string{`entry 1 "f"`, "LIBARCHIVE.xattr.user.x"}},
		{"truncated-in-content", plain[:512*3+100],
			[]string{"entry 3", "truncated"}},
		{"truncated-in-header", plain[:512*2+100],
			[]string{"entry 3", "truncated"}},
		{"truncated-at-entry-boundary", plain[:len(plain)-1024],
			[]string{"ends without its end-of-archive marker"}},
		{"corrupt-header", flip(plain, 512*2+148), // checksum field of entry 2's header
			[]string{"corrupt tar header"}},
		{"empty", nil,
			[]string{"end-of-archive marker"}},
		{"truncated-gzip", gz[:len(gz)/2],
			[]string{"truncated (gzip)"}},
		{"truncated-gzip-trailer", gz[:len(gz)-4],
			[]string{"gzip"}},
		{"corrupt-gzip", flip(gz, len(gz)/2),
			[]string{"gzip"}},
		{"corrupt-gzip-crc", flip(gz, -6),
			[]string{"corrupt gzip stream"}},
		{"truncated-zstd", zst[:len(zst)/2],
			[]string{"zstd"}},
		{"corrupt-zstd", flip(zst, len(zst)/2),
			[]string{"zstd"}},
		{"corrupt-zstd-checksum", flip(zst, -2),
			[]string{"corrupt zstd stream"}},
		{"xz", []byte("\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4\x46"),
			[]string{"unsupported compression: xz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := 0
			m, err := Read(context.Background(), bytes.NewReader(tt.tar), Options{Name: "hostile.tar"},
				func(e *images.Entry, r io.Reader) error { called++; _, err := io.Copy(io.Discard, r); return err })
			if err == nil {
				t.Fatalf("accepted:\n%s", m.Bytes())
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "tar hostile.tar: ") {
				t.Errorf("error does not name the input: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			var te *Error
			if !errors.As(err, &te) {
				t.Errorf("error is not a *TarError: %T", err)
			}
		})
	}
}

func TestReadTarUnsafePathsWrapErrUnsafePath(t *testing.T) {
	for _, b := range [][]byte{
		buildTar(t, tar.FormatPAX, file("../x", "")),
		buildTar(t, tar.FormatPAX, file("/x", "")),
		buildTar(t, tar.FormatPAX, symlink("l", "/"), file("l/x", "")),
	} {
		_, err := Read(context.Background(), bytes.NewReader(b), Options{}, nil)
		if !errors.Is(err, images.ErrUnsafePath) {
			t.Errorf("%v does not wrap ErrUnsafePath", err)
		}
	}
}

func TestReadTarAccepts(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n"
	group := "root:x:0:\nstaff:x:50:\n"
	tests := []struct {
		name string
		tar  []byte
		opts Options
		want string // the manifest, without its header line
	}{
		{"implied-parents", buildTar(t, tar.FormatPAX, file("usr/bin/x", "hi")), Options{}, `
. type=dir mode=0755 uid=0 gid=0 time=0.000000000
./usr type=dir mode=0755 uid=0 gid=0 time=0.000000000
./usr/bin type=dir mode=0755 uid=0 gid=0 time=0.000000000
./usr/bin/x type=file mode=0644 uid=0 gid=0 size=2 sha256digest=8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4 time=1700000000.000000000
`},
		{"later-directory-wins", buildTar(t, tar.FormatPAX, file("./d/f", ""), te{name: "./d/", typ: tar.TypeDir, mode: 0o700}, te{name: "./", typ: tar.TypeDir, mode: 0o711}), Options{}, `
. type=dir mode=0711 uid=0 gid=0 time=1700000000.000000000
./d type=dir mode=0700 uid=0 gid=0 time=1700000000.000000000
./d/f type=file mode=0644 uid=0 gid=0 size=0 sha256digest=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 time=1700000000.000000000
`},
		{"hardlink-group-led-by-first-path", buildTar(t, tar.FormatGNU, file("z", "same"), hardlink("b", "z"), hardlink("a", "b")), Options{}, `
. type=dir mode=0755 uid=0 gid=0 time=0.000000000
./a type=file mode=0644 uid=0 gid=0 size=4 sha256digest=0967115f2813a3541eaef77de9d9d5773f1c0c04314b0bbfe4ff3b3b1c55b5d5 time=1700000000.000000000
./b type=hardlink link=./a
./z type=hardlink link=./a
`},
		{"xattrs-schily-and-libarchive", buildTar(t, tar.FormatPAX, te{name: "f", typ: tar.TypeReg, pax: map[string]string{
			"SCHILY.xattr.security.capability":     "\x01\x00\x00\x02\x00\x20\x00\x00",
			"LIBARCHIVE.xattr.user.a%20b":          "aGk",
			"LIBARCHIVE.xattr.security.capability": "eA==", // SCHILY wins
		}}), Options{}, `
. type=dir mode=0755 uid=0 gid=0 time=0.000000000
./f type=file mode=0644 uid=0 gid=0 size=0 sha256digest=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 time=1700000000.000000000 xattr.security.capability=AQAAAgAgAAA= xattr.user.a\040b=aGk=
`},
		{"names-from-the-image", buildTar(t, tar.FormatPAX, dir("./"), dir("./etc/"), file("./etc/group", group), file("./etc/passwd", passwd),
			te{name: "./home", typ: tar.TypeDir, uid: 1000, gid: 50}, te{name: "./x", typ: tar.TypeFifo, uid: 7, gid: 7}), Options{}, `
. type=dir mode=0644 uid=0 gid=0 uname=root gname=root time=1700000000.000000000
./etc type=dir mode=0644 uid=0 gid=0 uname=root gname=root time=1700000000.000000000
./etc/group type=file mode=0644 uid=0 gid=0 uname=root gname=root size=22 sha256digest=e7a4704372dbf7317b1f99d2d5457d57bd3290333df88b887f9f28d84922f5ee time=1700000000.000000000
./etc/passwd type=file mode=0644 uid=0 gid=0 uname=root gname=root size=71 sha256digest=c1305dda69474db23e3d26e7985236ac9ad27eb32feaa86ae36c79bd72b994f1 time=1700000000.000000000
./home type=dir mode=0644 uid=1000 gid=50 uname=alice gname=staff time=1700000000.000000000
./x type=fifo mode=0644 uid=7 gid=7 time=1700000000.000000000
`},
		{"devices-and-long-names", buildTar(t, tar.FormatGNU, te{name: "dev/null", typ: tar.TypeChar, mode: 0o666}, te{name: "dev/" + strings.Repeat("x", 150), typ: tar.TypeBlock, mode: 0o660}), Options{}, `
. type=dir mode=0755 uid=0 gid=0 time=0.000000000
./dev type=dir mode=0755 uid=0 gid=0 time=0.000000000
./dev/null type=char mode=0666 uid=0 gid=0 device=native,1,3 time=1700000000.000000000
./dev/` + strings.Repeat("x", 150) + ` type=block mode=0660 uid=0 gid=0 device=native,1,3 time=1700000000.000000000
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []compression.Compression{compression.None, compression.Gzip, compression.Zstd} {
				m, err := Read(context.Background(), bytes.NewReader(compress(t, tt.tar, c)), tt.opts, nil)
				if err != nil {
					t.Fatalf("%s: %v", c, err)
				}
				got := strings.TrimPrefix(string(m.Bytes()), images.ManifestHeader+"\n")
				if want := strings.TrimPrefix(tt.want, "\n"); got != want {
					t.Fatalf("%s: got\n%s\nwant\n%s", c, got, want)
				}
				checkNames(t, m, tt.name)
			}
		})
	}
}

// checkNames checks the one case whose hashes are not spelt out above.
func checkNames(t *testing.T, m *images.Manifest, name string) {
	if name != "names-from-the-image" {
		return
	}
	for p, want := range map[string][2]string{".": {"root", "root"}, "home": {"alice", "staff"}, "x": {"", ""}} {
		e := m.Lookup(p)
		if e == nil || e.Uname != want[0] || e.Gname != want[1] {
			t.Errorf("%s: want names %v, got %+v", p, want, e)
		}
	}
}

func TestReadTarKeepsTarNames(t *testing.T) {
	b := buildTar(t, tar.FormatPAX, dir("etc"), file("etc/passwd", "root:x:0:0::/:/bin/sh\n"))
	var named bytes.Buffer
	tw := tar.NewWriter(&named)
	tw.WriteHeader(&tar.Header{Name: "x", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 5, Uname: "hostuser", Gname: "hostgroup", Format: tar.FormatPAX})
	tw.Close()
	b = append(b[:len(b)-1024], named.Bytes()...)
	for _, tc := range []struct {
		opts  Options
		uname string
	}{{Options{}, ""}, {Options{TarNames: true}, "hostuser"}} {
		m, err := Read(context.Background(), bytes.NewReader(b), tc.opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Lookup("x").Uname; got != tc.uname {
			t.Errorf("%+v: uname %q, want %q", tc.opts, got, tc.uname)
		}
	}
}

func TestReadTarFileFunc(t *testing.T) {
	b := buildTar(t, tar.FormatPAX, file("a", "hello"), file("b", "world!"), hardlink("c", "a"))
	t.Run("sees-each-content-once", func(t *testing.T) {
		seen := map[string]string{}
		_, err := Read(context.Background(), bytes.NewReader(b), Options{}, func(e *images.Entry, r io.Reader) error {
			c, err := io.ReadAll(r)
			seen[e.Path] = fmt.Sprintf("%d:%s", e.Size, c)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"a": "5:hello", "b": "6:world!"}; fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Fatalf("saw %v, want %v", seen, want)
		}
	})
	t.Run("unread-content-still-hashed", func(t *testing.T) {
		m, err := Read(context.Background(), bytes.NewReader(b), Options{}, func(e *images.Entry, r io.Reader) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		if e := m.Lookup("b"); e.SHA256 != images.Sum([]byte("world!")) || e.Size != 6 {
			t.Fatalf("b: %+v", e)
		}
	})
	t.Run("error-names-entry", func(t *testing.T) {
		_, err := Read(context.Background(), bytes.NewReader(b), Options{Name: "in.tar"}, func(e *images.Entry, r io.Reader) error {
			if e.Path == "b" {
				return errors.New("disk full")
			}
			return nil
		})
		if err == nil || !strings.Contains(err.Error(), `tar in.tar: entry 2 "b": content: disk full`) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Read(ctx, bytes.NewReader(b), Options{}, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestWriteTarGolden pins WriteTar's bytes (and the compressors') to
// golden files; -update rewrites them.
func TestWriteTarGolden(t *testing.T) {
	m, content := imagetest.Golden(t)
	var plain bytes.Buffer
	if err := Write(context.Background(), &plain, m, imagetest.MapOpener(content)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []compression.Compression{compression.None, compression.Gzip, compression.Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			got := compress(t, plain.Bytes(), c)
			golden := filepath.Join("testdata", "golden"+c.Ext())
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("output differs from %s (%d bytes, want %d); if intended, go test -update", golden, len(got), len(want))
			}
			// It reads back to the manifest, less the socket.
			back, err := Read(context.Background(), bytes.NewReader(got), Options{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := images.Compare(m, back, images.CompareOptions{}); len(d) != 1 || d[0].Path != "dev/log" || d[0].Kind != images.Removed {
				t.Fatalf("read back differs: %+v", d)
			}
			// A normalised tar survives tar → manifest → tar bit for bit.
			var again bytes.Buffer
			if err := Write(context.Background(), &again, back, imagetest.MapOpener(content)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Bytes(), plain.Bytes()) {
				t.Fatal("ReadTar then WriteTar of WriteTar's output changed its bytes")
			}
		})
	}
}

// verifiedReader vouches for its content (VerifiedContent).
type verifiedReader struct {
	*bytes.Reader
	sha images.Digest
}

func (verifiedReader) Close() error                    { return nil }
func (r verifiedReader) VerifiedSHA256() images.Digest { return r.sha }

// TestWriteTarVerifiedContent: content vouched for by its source
// (VerifiedContent with the entry's sha256) gives the same bytes as
// content WriteTar hashes itself.
func TestWriteTarVerifiedContent(t *testing.T) {
	m, content := imagetest.Golden(t)
	var plain, verified bytes.Buffer
	if err := Write(context.Background(), &plain, m, imagetest.MapOpener(content)); err != nil {
		t.Fatal(err)
	}
	err := Write(context.Background(), &verified, m, func(ctx context.Context, e *images.Entry) (io.ReadCloser, error) {
		return verifiedReader{bytes.NewReader(content[e.SHA256]), e.SHA256}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain.Bytes(), verified.Bytes()) {
		t.Fatal("verified content gave other bytes")
	}
}

func TestWriteTarChecksContent(t *testing.T) {
	m, content := imagetest.Golden(t)
	tests := []struct {
		name string
		open images.OpenFunc
		want string
	}{
		{"other-bytes", func(ctx context.Context, e *images.Entry) (io.ReadCloser, error) {
			b := bytes.Clone(content[e.SHA256])
			b[0] ^= 1
			return io.NopCloser(bytes.NewReader(b)), nil
		}, "the manifest says"},
		{"short", func(ctx context.Context, e *images.Entry) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(content[e.SHA256][1:])), nil
		}, "bytes, the manifest says"},
		{"long", func(ctx context.Context, e *images.Entry) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(append(bytes.Clone(content[e.SHA256]), 'x'))), nil
		}, "longer than"},
		{"open-fails", func(ctx context.Context, e *images.Entry) (io.ReadCloser, error) {
			return nil, errors.New("object missing")
		}, "object missing"},
		// A reader vouching for a sha256 other than the entry's is hashed.
		{"verified-other-sha", func(ctx context.Context, e *images.Entry) (io.ReadCloser, error) {
			b := bytes.Clone(content[e.SHA256])
			b[0] ^= 1
			return verifiedReader{bytes.NewReader(b), images.Sum(b)}, nil
		}, "the manifest says"},
		// The size is checked even when the content is vouched for.
		{"verified-short", func(ctx context.Context, e *images.Entry) (io.ReadCloser, error) {
			return verifiedReader{bytes.NewReader(content[e.SHA256][1:]), e.SHA256}, nil
		}, "bytes, the manifest says"},
		{"verified-long", func(ctx context.Context, e *images.Entry) (io.ReadCloser, error) {
			return verifiedReader{bytes.NewReader(append(bytes.Clone(content[e.SHA256]), 'x')), e.SHA256}, nil
		}, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Write(context.Background(), io.Discard, m, tt.open)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "content of ./usr/") {
				t.Fatalf("got %v, want an error naming the entry and saying %q", err, tt.want)
			}
		})
	}
	bad := &images.Manifest{Entries: []images.Entry{{Path: ".", Type: images.TypeDir}, {Path: "../x", Type: images.TypeDir}}}
	if err := Write(context.Background(), io.Discard, bad, nil); !errors.Is(err, images.ErrUnsafePath) {
		t.Fatalf("invalid manifest: got %v", err)
	}
}

// TestReadTarRefusesSparse: sparse entries (GNU and PAX forms, made by
// GNU tar --sparse) are refused, since a few bytes of map can announce
// terabytes of holes.
func TestReadTarRefusesSparse(t *testing.T) {
	gnutar := testenv.RequireTool(t, "tar", "tar")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "big"), 64<<20); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"gnu", "posix"} {
		t.Run(format, func(t *testing.T) {
			out, err := exec.Command(gnutar, "--create", "--sparse", "--format="+format, "--file=-", "--directory="+dir, "big").Output()
			if err != nil {
				t.Fatal(err)
			}
			_, err = Read(context.Background(), bytes.NewReader(out), Options{Name: "sparse.tar"}, nil)
			if err == nil || !strings.Contains(err.Error(), `entry 1 "big": sparse files are not supported`) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// TestReadTarStopsAtRefusal: a refused entry ends the read at once; the
// rest of a large stream is not read.
func TestReadTarStopsAtRefusal(t *testing.T) {
	big := imagetest.SampleData(8 << 20)
	z := compress(t, buildTar(t, tar.FormatPAX, file("../escape", "x"), file("big", string(big))), compression.Zstd)
	cr := &counting.Reader{R: bytes.NewReader(z)}
	if _, err := Read(context.Background(), cr, Options{}, nil); err == nil {
		t.Fatal("accepted")
	}
	if cr.N > int64(len(z))/2 {
		t.Fatalf("read %d of %d bytes after refusing the first entry", cr.N, len(z))
	}
}
