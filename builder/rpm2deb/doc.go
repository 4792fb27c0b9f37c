// Package rpm2deb converts RPM packages into Debian packages.
//
// The nouns:
//
//   - an RPM: a lead, a signature header, a header (tags: name, version,
//     files, dependencies, scriptlets, changelog) and a compressed cpio
//     payload holding the files' bytes. [ReadRPM] reads the header and
//     opens the payload; the header, not the payload, is the authority on
//     every file attribute (mode, owner, link target, device numbers,
//     hardlink sets, capabilities).
//   - a conversion: [Convert] turns one RPM into one .deb, written
//     deterministically (same RPM and options → same bytes), and returns a
//     [Report] of everything it mapped, dropped or approximated.
//   - a [Resolver]: answers "which Debian package provides this file or
//     this soname" from a target root's dpkg database, so RPM file and
//     soname dependencies become real Depends.
package rpm2deb
