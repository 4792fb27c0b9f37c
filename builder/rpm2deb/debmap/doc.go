// Package debmap maps values of an RPM header to what Debian policy asks
// of a binary package: the package name, version and architecture
// ([DebName], [DebVersion], [DebArch]), the section for an RPM Group
// ([DebSection]), a Maintainer or changelog contact lintian accepts
// ([DebContact]), the licences of a License tag that Debian ships in
// /usr/share/common-licenses ([ParseLicense]), and the changelog:
// [WriteChangelog] turns RPM changelog entries into a Debian changelog
// with versions and dates strictly decreasing. Every function is pure:
// rpm2deb reads the RPM and reports what these changed.
package debmap
