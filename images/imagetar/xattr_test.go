package imagetar

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/testenv"
	"golang.org/x/sys/unix"
)

// capSetuid is the security.capability value of `setcap cap_setuid=ep`
// (VFS_CAP_REVISION_2, effective, CAP_SETUID permitted).
const capSetuid = "\x01\x00\x00\x02\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// TestAttackXattrNameWithEquals is attack 11 of issue 9: a tar whose xattr
// name holds '=' followed by a capability in base64, with an empty value.
// Written unescaped into the manifest, the name ended at the '=' and the
// rest became the value: the synced file got cap_setuid=ep. The name must
// survive the manifest and tar round trips literally.
func TestAttackXattrNameWithEquals(t *testing.T) {
	b64 := strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(capSetuid)), "=")
	hostile := images.XattrCapability + "=" + b64
	// A second name whose tail is not base64 made the old manifest unreadable.
	unreadable := "user.x=!!"
	crafted := buildTar(t, tar.FormatPAX,
		te{name: "./", typ: tar.TypeDir, mode: 0o755},
		te{name: "./ping", typ: tar.TypeReg, body: "elf", mode: 0o755, pax: map[string]string{
			"LIBARCHIVE.xattr." + images.XattrCapability + "%3D" + b64: "",
			"LIBARCHIVE.xattr.user.x%3D!!":                             "",
		}})
	check := func(how string, m *images.Manifest) {
		t.Helper()
		e := m.Lookup("ping")
		if e == nil {
			t.Fatalf("%s: no ping", how)
		}
		if v, ok := e.Xattrs[images.XattrCapability]; ok {
			t.Fatalf("%s: ping has %s = %q: the name was cut at its '='", how, images.XattrCapability, v)
		}
		if v, ok := e.Xattrs[hostile]; !ok || v != "" {
			t.Fatalf("%s: xattrs %q, want the name %q with an empty value", how, e.Xattrs, hostile)
		}
		if v, ok := e.Xattrs[unreadable]; !ok || v != "" {
			t.Fatalf("%s: xattrs %q, want the name %q with an empty value", how, e.Xattrs, unreadable)
		}
		if len(e.Xattrs) != 2 {
			t.Fatalf("%s: xattrs %q", how, e.Xattrs)
		}
	}
	ctx := context.Background()
	m, err := Read(ctx, bytes.NewReader(crafted), Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	check("import", m)
	text := m.Bytes()
	if !bytes.Contains(text, []byte(" xattr.security.capability\\075"+b64+"=")) {
		t.Errorf("'=' of the name not escaped:\n%s", text)
	}
	p, err := images.ParseManifest(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("the image's manifest does not read back: %v\n%s", err, text)
	}
	check("manifest round trip", p)
	if p.Digest() != m.Digest() {
		t.Fatal("digest changed")
	}

	// Exported, the names go as LIBARCHIVE.xattr records and read back.
	var out bytes.Buffer
	open := func(context.Context, *images.Entry) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("elf")), nil
	}
	if err := Write(ctx, &out, p, open); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(out.Bytes()))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if _, ok := h.PAXRecords["SCHILY.xattr."+images.XattrCapability]; ok {
			t.Errorf("%s: a record names %s itself: %q", h.Name, images.XattrCapability, h.PAXRecords)
		}
	}
	back, err := Read(ctx, bytes.NewReader(out.Bytes()), Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	check("export and import", back)
	if back.Digest() != m.Digest() {
		t.Fatal("digest changed through export")
	}
}

// TestWriteTarXattrNamesGNUTar: xattr names holding '=', '%' and bytes
// outside printable ASCII, exported, extracted by GNU tar and walked back,
// are the same names. (bsdtar 3.6 extracts, for such a name, also the
// still-encoded SCHILY one, from its own archives too: a libarchive bug.)
func TestWriteTarXattrNamesGNUTar(t *testing.T) {
	gnutar := testenv.RequireTool(t, "tar", "tar")
	testenv.RequireTool(t, "setfattr", "attr")
	ctx := context.Background()
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(probe, "user.probe", nil, 0); err != nil {
		t.Fatalf("%s does not take user xattrs (%v): set TMPDIR to a filesystem that does", dir, err)
	}
	x := map[string]string{"user.a=b": "1", "user.p%3D": "2", "user.\xc3\xa9 x": "3", "user.plain": "4", "user.%%": "5"}
	m, err := images.NewManifest([]images.Entry{
		{Path: ".", Type: images.TypeDir, Mode: 0o755, Mtime: 1},
		{Path: "f", Type: images.TypeFile, Mode: 0o644, Size: 0, SHA256: images.Sum(nil), Mtime: 1, Xattrs: x},
	})
	if err != nil {
		t.Fatal(err)
	}
	tarFile := filepath.Join(dir, "x.tar")
	var b bytes.Buffer
	if err := Write(ctx, &b, m, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tarFile, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	cmd := exec.Command(gnutar, "--xattrs", "--xattrs-include=*", "-C", out, "-xpf", tarFile)
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, o)
	}
	w, err := images.WalkDir(ctx, out, images.WalkOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.Lookup("f").Xattrs; !maps.Equal(got, x) {
		t.Fatalf("GNU tar extracted xattrs %q, want %q", got, x)
	}
	back, err := Read(ctx, bytes.NewReader(b.Bytes()), Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Lookup("f").Xattrs; !maps.Equal(got, x) {
		t.Fatalf("ReadTar read xattrs %q, want %q", got, x)
	}
}
