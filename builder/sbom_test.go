package builder

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/builder/dpkgdb"
	"github.com/ingotfleet/ingot/images"
)

func testDB(t *testing.T) *dpkgdb.DB {
	t.Helper()
	status := "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nMulti-Arch: same\nVersion: 2.36-9\nSource: glibc\nMaintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\nDescription: GNU C Library\n more\n\n" +
		"Package: passwd\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:4.13+dfsg1-1\nMaintainer: Shadow <shadow@x>\nDescription: change passwords\n\n" +
		"Package: gone\nStatus: deinstall ok config-files\nArchitecture: all\nVersion: 1\nDescription: removed\n"
	ps, err := deb.ParseParagraphs(strings.NewReader(status), "status")
	if err != nil {
		t.Fatal(err)
	}
	db := &dpkgdb.DB{}
	for _, p := range ps {
		db.Packages = append(db.Packages, &dpkgdb.Installed{Name: p.Get("Package"), Version: p.Get("Version"),
			Architecture: p.Get("Architecture"), Status: p.Get("Status"), Fields: p})
	}
	return db
}

// TestSBOM checks the SPDX 2.3 document's structure: required fields,
// unique and valid SPDX ids, relationships that point at packages, purls,
// only installed packages, and the same bytes for the same inputs.
func TestSBOM(t *testing.T) {
	in := &Input{SourceDateEpoch: 1700000000, Architecture: "amd64", Packages: []Package{
		{Name: "libc6", Version: "2.36-9", Architecture: "amd64", SHA256: strings.Repeat("ab", 32)},
		{Name: "passwd", Version: "1:4.13+dfsg1-1", Architecture: "amd64", SHA256: strings.Repeat("cd", 32)},
	}}
	meta := Meta{Name: "server", Tag: "1", IngotVersion: "test",
		DownloadURL: func(p *Package) string { return "http://deb.debian.org/debian/pool/" + p.ID() + ".deb" }}
	d := images.Sum([]byte("manifest"))
	b, err := SBOM(testDB(t), in, meta, d)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := SBOM(testDB(t), in, meta, d)
	if string(again) != string(b) {
		t.Fatal("SBOM is not deterministic")
	}
	var doc spdxDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXID != "SPDXRef-DOCUMENT" ||
		!strings.HasPrefix(doc.DocumentNamespace, "https://") || doc.CreationInfo.Created != "2023-11-14T22:13:20Z" {
		t.Errorf("document header: %+v", doc)
	}
	idRE := regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)
	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	for _, p := range doc.Packages {
		if !idRE.MatchString(p.SPDXID) || ids[p.SPDXID] {
			t.Errorf("bad or duplicate SPDXID %q", p.SPDXID)
		}
		ids[p.SPDXID] = true
		if p.DownloadLocation == "" || p.LicenseConcluded == "" || p.CopyrightText == "" {
			t.Errorf("package %s lacks a required field", p.Name)
		}
		if p.Name == "gone" {
			t.Error("a package that is not installed is in the SBOM")
		}
	}
	if len(doc.Packages) != 3 {
		t.Errorf("%d packages, want the image and 2 dpkg packages", len(doc.Packages))
	}
	for _, r := range doc.Relationships {
		if !ids[r.Element] || !ids[r.Related] {
			t.Errorf("relationship %+v points at an unknown element", r)
		}
	}
	passwd := doc.Packages[2]
	if passwd.ExternalRefs[0].Locator != "pkg:deb/debian/passwd@1%3A4.13+dfsg1-1?arch=amd64" ||
		passwd.Checksums[0].ChecksumValue != strings.Repeat("cd", 32) ||
		passwd.DownloadLocation != "http://deb.debian.org/debian/pool/passwd_1:4.13+dfsg1-1_amd64.deb" ||
		passwd.Supplier != "Person: Shadow (shadow@x)" {
		t.Errorf("passwd: %+v", passwd)
	}

	prov, err := Provenance(in, Meta{Name: "server", Tag: "1", IngotVersion: "test", SpecSHA256: "s", LockSHA256: "l"}, d)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Type    string `json:"_type"`
		Subject []struct {
			Name   string
			Digest map[string]string
		}
		PredicateType string
	}
	if err := json.Unmarshal(prov, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != "https://in-toto.io/Statement/v1" || st.Subject[0].Digest["sha256"] != d.String() ||
		st.Subject[0].Name != "server:1" || st.PredicateType != "https://slsa.dev/provenance/v1" {
		t.Errorf("provenance statement: %+v", st)
	}
	if !strings.Contains(string(prov), `"lock": {`) || !strings.Contains(string(prov), strings.Repeat("ab", 32)) {
		t.Errorf("provenance lacks the lock digest or the packages:\n%s", prov)
	}
}
