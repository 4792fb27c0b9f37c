package debmap

import (
	"regexp"
	"strings"
)

// UnknownAddress is the address given to a contact that has none Debian
// accepts (.invalid is reserved: mail to it can never be delivered).
const UnknownAddress = "unknown@rpm2deb.invalid"

var (
	// An address lintian accepts: a dot-atom local part, and a host of
	// at least two labels, the last not all digits.
	localRE  = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+/=?^_{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_{|}~-]+)*$`)
	labelRE  = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$`)
	letterRE = regexp.MustCompile(`[A-Za-z]`)
)

// validAddress reports whether a is user@host as Debian's tools take it.
func validAddress(a string) bool {
	user, host, ok := strings.Cut(a, "@")
	if !ok || !localRE.MatchString(user) {
		return false
	}
	labels := strings.Split(host, ".")
	if len(labels) < 2 || !letterRE.MatchString(labels[len(labels)-1]) {
		return false
	}
	for _, l := range labels {
		if len(l) > 63 || !labelRE.MatchString(l) {
			return false
		}
	}
	return true
}

// DebContact turns an RPM contact (Packager, Vendor, a changelog author)
// into "Name <address>" as a Debian Maintainer field must be: one name
// made of characters RFC 5322 allows unquoted in a name, one deliverable-
// looking address, not root. It returns the contact and, when it had to
// change anything but surrounding space, why; "" for an empty input.
func DebContact(s string) (contact, note string) {
	s = strings.Join(strings.Fields(SanitizeLine(s)), " ")
	if s == "" {
		return "", ""
	}
	name, addr := s, ""
	var notes []string
	if lt := strings.IndexByte(s, '<'); lt >= 0 {
		name = s[:lt]
		rest := s[lt+1:]
		gt := strings.IndexByte(rest, '>')
		if gt < 0 {
			gt = len(rest)
		}
		addr = strings.TrimSpace(rest[:gt])
		if after := strings.TrimSpace(strings.TrimPrefix(rest[gt:], ">")); after != "" {
			notes = append(notes, "dropped "+quote(after)+" after the address")
		}
	} else if f := strings.Fields(s); len(f) > 0 && strings.Contains(f[len(f)-1], "@") {
		// "Jane Doe jane@example.com" or a bare address.
		addr = f[len(f)-1]
		name = strings.Join(f[:len(f)-1], " ")
	}
	switch {
	case addr == "":
		notes = append(notes, "no address")
		addr = UnknownAddress
	case !validAddress(addr):
		notes = append(notes, quote(addr)+" is not a mail address")
		addr = UnknownAddress
	}
	clean := cleanPhrase(name)
	if clean != strings.TrimSpace(name) {
		notes = append(notes, "characters a mail name cannot hold unquoted removed from "+quote(strings.TrimSpace(name)))
	}
	user, _, _ := strings.Cut(addr, "@")
	if clean == "" && addr != UnknownAddress {
		clean = cleanPhrase(user)
		notes = append(notes, "no name: the address's user part used")
	}
	if strings.EqualFold(clean, "root") || user == "root" {
		notes = append(notes, "root is no maintainer")
		if strings.EqualFold(clean, "root") {
			clean = ""
		}
		if user == "root" {
			addr = UnknownAddress
		}
	}
	if clean == "" {
		clean = "Unknown"
	}
	return clean + " <" + addr + ">", strings.Join(notes, "; ")
}

// cleanPhrase keeps what RFC 5322 allows in an unquoted display name
// (atoms and dots), turning the specials ( ) < > [ ] : ; @ \ , " into
// spaces.
func cleanPhrase(s string) string {
	s = strings.Map(func(r rune) rune {
		if strings.ContainsRune(`()<>[]:;@\,"`, r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func quote(s string) string { return `"` + s + `"` }
