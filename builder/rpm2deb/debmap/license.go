package debmap

import (
	"regexp"
	"strings"
)

// CommonLicenses are the files of /usr/share/common-licenses on Debian 12
// (base-files) that an RPM License tag can name. BSD is left out on
// purpose: that file is the University of California's licence, Debian
// policy (12.5) deprecates pointing at it, and RPM's "BSD" means any
// BSD-style licence.
var CommonLicenses = []string{
	"Apache-2.0", "Artistic", "CC0-1.0", "GFDL", "GFDL-1.2", "GFDL-1.3",
	"GPL", "GPL-1", "GPL-2", "GPL-3", "LGPL", "LGPL-2", "LGPL-2.1", "LGPL-3",
	"MPL-1.1", "MPL-2.0",
}

var (
	licenseSplitRE = regexp.MustCompile(`(?i)[(),;/]|\s(?:and|or|with)\s`)
	// Fedora's short names (GPLv2+, LGPLv2.1) and SPDX identifiers
	// (GPL-2.0-or-later, LGPL-2.1-only), lowercased, without spaces.
	gnuRE      = regexp.MustCompile(`^(gpl|lgpl|gfdl)(?:v|-)?(\d+(?:\.\d+)?)?(\+|-?or-?later|-?only)?$`)
	apacheRE   = regexp.MustCompile(`^(?:apache|asl)(?:license)?(?:v|-)?2(?:\.0)?$`)
	artisticRE = regexp.MustCompile(`^artistic(?:v|-)?(?:1(?:\.0)?)?(?:-perl)?$`)
	mplRE      = regexp.MustCompile(`^mpl(?:v|-)?(1\.1|2|2\.0)$`)
	cc0RE      = regexp.MustCompile(`^cc0(?:-?1\.0)?$`)
)

// LicenseTerm is one licence an RPM License tag names.
type LicenseTerm struct {
	Name   string // as the tag spells it: "GPLv2+"
	Common string // its file in /usr/share/common-licenses, or ""
}

// ParseLicense splits an RPM License tag ("GPLv2+ and (LGPLv2+ or MIT)",
// "GPL-2.0-or-later WITH Classpath-exception-2.0") into its licences, in
// order, each once, and names the common-licenses file of those that have
// one.
func ParseLicense(tag string) []LicenseTerm {
	var out []LicenseTerm
	seen := map[string]bool{}
	for _, part := range licenseSplitRE.Split(" "+tag+" ", -1) {
		name := strings.Join(strings.Fields(part), " ")
		if name == "" || seen[name] || strings.EqualFold(name, "and") || strings.EqualFold(name, "or") {
			continue
		}
		seen[name] = true
		out = append(out, LicenseTerm{Name: name, Common: commonLicense(name)})
	}
	return out
}

// commonLicense returns the common-licenses file a licence name means.
func commonLicense(name string) string {
	k := strings.ToLower(strings.ReplaceAll(name, " ", ""))
	if m := gnuRE.FindStringSubmatch(k); m != nil {
		file := map[string]string{"gpl": "GPL", "lgpl": "LGPL", "gfdl": "GFDL"}[m[1]]
		if v := strings.TrimSuffix(m[2], ".0"); v != "" {
			file += "-" + v
		}
		return known(file)
	}
	switch {
	case apacheRE.MatchString(k):
		return "Apache-2.0"
	case artisticRE.MatchString(k):
		return "Artistic"
	case cc0RE.MatchString(k):
		return "CC0-1.0"
	}
	if m := mplRE.FindStringSubmatch(k); m != nil {
		if m[1] == "1.1" {
			return "MPL-1.1"
		}
		return "MPL-2.0"
	}
	return ""
}

func known(file string) string {
	for _, c := range CommonLicenses {
		if c == file {
			return file
		}
	}
	return ""
}
