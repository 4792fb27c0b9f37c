// Package debversion is ingot's one ordering of Debian package versions,
// as dpkg --compare-versions orders them (deb-version(7)). The ordering
// itself is pault.ag/go/debian/version's; this package adds Split and
// Compare for version strings that come from elsewhere and have not been
// validated (converted RPM versions, changelog lines), so that callers
// never write their own verrevcmp again; and Parse and CompareStrict for
// versions read from an image (the differ and review), where a malformed
// one is an error or sorts first.
package debversion
