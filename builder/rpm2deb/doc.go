// Package rpm2deb converts RPM packages into Debian packages.
//
// The nouns:
//
//   - an RPM, read by builder/rpm: its header is the authority on every
//     file attribute (mode, owner, link target, device numbers, hardlink
//     sets, capabilities); the cpio payload gives the files' bytes.
//   - a conversion: [Convert] turns one RPM into one .deb, written
//     deterministically (same RPM and options → same bytes), and returns a
//     [Report] of everything it mapped, dropped or approximated. Names,
//     versions, contacts, licences and the changelog are mapped by
//     package debmap.
//   - a [Resolver]: answers "which Debian package provides this file or
//     this soname", so RPM file and soname dependencies become real
//     Depends; package provides answers it from a target root's dpkg
//     database.
package rpm2deb
