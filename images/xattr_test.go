package images

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"strings"
	"testing"
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
	hostile := XattrCapability + "=" + b64
	// A second name whose tail is not base64 made the old manifest unreadable.
	unreadable := "user.x=!!"
	crafted := buildTar(t, tar.FormatPAX,
		te{name: "./", typ: tar.TypeDir, mode: 0o755},
		te{name: "./ping", typ: tar.TypeReg, body: "elf", mode: 0o755, pax: map[string]string{
			"LIBARCHIVE.xattr." + XattrCapability + "%3D" + b64: "",
			"LIBARCHIVE.xattr.user.x%3D!!":                      "",
		}})
	check := func(how string, m *Manifest) {
		t.Helper()
		e := m.Lookup("ping")
		if e == nil {
			t.Fatalf("%s: no ping", how)
		}
		if v, ok := e.Xattrs[XattrCapability]; ok {
			t.Fatalf("%s: ping has %s = %q: the name was cut at its '='", how, XattrCapability, v)
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
	m, err := ReadTar(ctx, bytes.NewReader(crafted), TarOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	check("import", m)
	text := m.Bytes()
	if !bytes.Contains(text, []byte(" xattr.security.capability\\075"+b64+"=")) {
		t.Errorf("'=' of the name not escaped:\n%s", text)
	}
	p, err := ParseManifest(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("the image's manifest does not read back: %v\n%s", err, text)
	}
	check("manifest round trip", p)
	if p.Digest() != m.Digest() {
		t.Fatal("digest changed")
	}

	// Exported, the names go as LIBARCHIVE.xattr records and read back.
	var out bytes.Buffer
	open := func(context.Context, *Entry) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("elf")), nil
	}
	if err := WriteTar(ctx, &out, p, open); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(out.Bytes()))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		for k := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") && strings.Contains(k, "capability") {
				t.Errorf("%s: record %q cuts the name", h.Name, k)
			}
		}
	}
	back, err := ReadTar(ctx, bytes.NewReader(out.Bytes()), TarOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	check("export and import", back)
	if back.Digest() != m.Digest() {
		t.Fatal("digest changed through export")
	}
}
