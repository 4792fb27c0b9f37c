package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ingotfleet/ingot/builder/dpkgdb"
	"github.com/ingotfleet/ingot/builder/normalize"
	"github.com/ingotfleet/ingot/images"
)

type spdxDoc struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreation       `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreation struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name             string            `json:"name"`
	SPDXID           string            `json:"SPDXID"`
	VersionInfo      string            `json:"versionInfo,omitempty"`
	Supplier         string            `json:"supplier,omitempty"`
	DownloadLocation string            `json:"downloadLocation"`
	FilesAnalyzed    bool              `json:"filesAnalyzed"`
	Checksums        []spdxChecksum    `json:"checksums,omitempty"`
	LicenseConcluded string            `json:"licenseConcluded"`
	LicenseDeclared  string            `json:"licenseDeclared"`
	CopyrightText    string            `json:"copyrightText"`
	Summary          string            `json:"summary,omitempty"`
	SourceInfo       string            `json:"sourceInfo,omitempty"`
	ExternalRefs     []spdxExternalRef `json:"externalRefs,omitempty"`
	PrimaryPurpose   string            `json:"primaryPackagePurpose,omitempty"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxExternalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

var spdxIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]`)

func spdxID(parts ...string) string {
	return "SPDXRef-" + spdxIDUnsafe.ReplaceAllString(strings.Join(parts, "-"), "-")
}

// purl is the package URL of a Debian package.
func purl(name, version, arch string) string {
	return "pkg:deb/debian/" + url.PathEscape(name) + "@" + strings.ReplaceAll(url.PathEscape(version), ":", "%3A") + "?arch=" + url.QueryEscape(arch)
}

// supplier turns a Maintainer field into an SPDX supplier.
func supplier(m string) string {
	m = strings.TrimSpace(m)
	if m == "" {
		return "NOASSERTION"
	}
	name, email, ok := strings.Cut(m, "<")
	if !ok {
		return "Person: " + m
	}
	return "Person: " + strings.TrimSpace(name) + " (" + strings.TrimSuffix(strings.TrimSpace(email), ">") + ")"
}

// SBOM is the SPDX 2.3 JSON document of the image: one package per
// installed dpkg package (name, version, architecture, maintainer,
// source, purl, and the sha256 and URL of the .deb it came from), all
// CONTAINed by the image. It depends only on its inputs.
func SBOM(db *dpkgdb.DB, in *Input, meta Meta, image images.Digest) ([]byte, error) {
	name := meta.Name
	if name == "" {
		name = "image"
	}
	imageID := spdxID("Image", name)
	doc := spdxDoc{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name:              name + "@sha256:" + image.String(),
		DocumentNamespace: "https://ingot.invalid/spdx/" + url.PathEscape(name) + "/sha256-" + image.String(),
		CreationInfo: spdxCreation{
			Created:  time.Unix(in.SourceDateEpoch, 0).UTC().Format(time.RFC3339),
			Creators: []string{"Tool: ingot-" + meta.IngotVersion},
		},
	}
	doc.Packages = append(doc.Packages, spdxPackage{
		Name: name, SPDXID: imageID, VersionInfo: "sha256:" + image.String(),
		DownloadLocation: "NOASSERTION", LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION",
		CopyrightText: "NOASSERTION", PrimaryPurpose: "OPERATING-SYSTEM",
		Checksums: []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: image.String()}},
	})
	doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", imageID})
	locked := map[string]*Package{}
	for i := range in.Packages {
		p := &in.Packages[i]
		locked[p.Name+":"+p.Architecture] = p
	}
	pkgs := append([]*dpkgdb.Installed(nil), db.Packages...)
	sort.Slice(pkgs, func(i, j int) bool {
		if pkgs[i].Name != pkgs[j].Name {
			return pkgs[i].Name < pkgs[j].Name
		}
		return pkgs[i].Architecture < pkgs[j].Architecture
	})
	for _, p := range pkgs {
		if !p.HasFiles() { // what the image ships; see PackageList
			continue
		}
		id := spdxID("Package", "deb", p.Name, p.Architecture)
		sp := spdxPackage{
			Name: p.Name, SPDXID: id, VersionInfo: p.Version,
			Supplier:         supplier(p.Fields.Get("Maintainer")),
			DownloadLocation: "NOASSERTION", LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION",
			CopyrightText: "NOASSERTION",
			Summary:       firstLine(p.Fields.Get("Description")),
			ExternalRefs:  []spdxExternalRef{{"PACKAGE-MANAGER", "purl", purl(p.Name, p.Version, p.Architecture)}},
		}
		if src := p.Fields.Get("Source"); src != "" {
			sp.SourceInfo = "built from Debian source package " + src
		}
		if lp := locked[p.Name+":"+p.Architecture]; lp != nil {
			sp.Checksums = []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: strings.ToLower(lp.SHA256)}}
			if meta.DownloadURL != nil {
				if u := meta.DownloadURL(lp); u != "" {
					sp.DownloadLocation = u
				}
			}
		}
		doc.Packages = append(doc.Packages, sp)
		doc.Relationships = append(doc.Relationships, spdxRelationship{imageID, "CONTAINS", id})
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(l)
}

// Provenance is an in-toto v1 statement with a SLSA provenance v1
// predicate: the image digest as subject; the spec and lock digests, the
// build time and the noise list version as parameters; every .deb as a
// resolved dependency; ingot's version as the builder. No wall-clock time,
// host or user is in it, so it is reproducible like the image.
func Provenance(in *Input, meta Meta, image images.Digest) ([]byte, error) {
	type digest map[string]string
	type resource struct {
		Name   string `json:"name,omitempty"`
		URI    string `json:"uri,omitempty"`
		Digest digest `json:"digest"`
	}
	deps := make([]resource, 0, len(in.Packages))
	for i := range in.Packages {
		p := &in.Packages[i]
		r := resource{Name: p.ID() + ".deb", Digest: digest{"sha256": strings.ToLower(p.SHA256)}}
		if meta.DownloadURL != nil {
			r.URI = meta.DownloadURL(p)
		}
		deps = append(deps, r)
	}
	sort.Slice(deps, func(i, j int) bool { return deps[i].Name < deps[j].Name })
	ext := map[string]any{
		"spec":                digest{"sha256": meta.SpecSHA256},
		"lock":                digest{"sha256": meta.LockSHA256},
		"architecture":        in.Architecture,
		"source_date_epoch":   in.SourceDateEpoch,
		"noise_list_version":  normalize.NoiseVersion,
		"exclude":             nonNil(in.Exclude),
		"keep":                nonNil(in.Keep),
		"customize":           nonNil(in.Customize),
		"overlay_tree_sha256": overlayDigest(in.Overlay),
		"reference":           refOf(meta),
	}
	stmt := map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []resource{{Name: refOf(meta), Digest: digest{"sha256": image.String()}}},
		"predicateType": "https://slsa.dev/provenance/v1",
		"predicate": map[string]any{
			"buildDefinition": map[string]any{
				"buildType":            "https://github.com/ingotfleet/ingot/build/v1",
				"externalParameters":   ext,
				"resolvedDependencies": deps,
			},
			"runDetails": map[string]any{
				"builder": map[string]any{
					"id":      "https://github.com/ingotfleet/ingot",
					"version": map[string]string{"ingot": meta.IngotVersion},
				},
			},
		},
	}
	b, err := json.MarshalIndent(stmt, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func refOf(meta Meta) string {
	if meta.Name == "" {
		return "image"
	}
	return meta.Name + ":" + meta.Tag
}

// overlayDigest is a digest of the overlay tree's manifest (paths, modes,
// contents), "" without an overlay.
func overlayDigest(dir string) string {
	if dir == "" {
		return ""
	}
	m, err := images.WalkDir(noCtx, dir, images.WalkOptions{NumericOwner: true}, nil)
	if err != nil {
		return fmt.Sprintf("error: %v", err)
	}
	// Owners and mtimes of the checkout do not reach the image.
	var b strings.Builder
	for _, e := range m.Entries {
		fmt.Fprintf(&b, "%s %s %o %s %s\n", images.Escape(e.Path), e.Type, e.Mode, e.SHA256, images.Escape(e.Link))
	}
	h := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(h[:])
}
