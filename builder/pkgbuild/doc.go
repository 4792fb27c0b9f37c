// Package pkgbuild builds Debian binary packages from source,
// hermetically and reproducibly.
//
// A Source is a .dsc with its files (each checked against the .dsc's
// Checksums-Sha256) or an unpacked tree with debian/. Its build
// relations (Build-Depends, -Arch, -Indep and Build-Conflicts, -Arch,
// -Indep) are reduced for the build architecture and profiles
// (relations.go) and resolved with builder/resolve, together with the
// Base's package set and build-essential, into a build lock: a
// spec.Lock whose spec-sha256 is the digest of everything resolution
// depended on (the spec or the base image, the source's identity and its
// reduced relations). A Base is a spec, whose build root is made from the
// lock by builder.BuildRoot, or an ImageBase, an image in the store: its
// dpkg status pins its packages during resolution, the lock holds only
// what it lacks, and the root is the image extracted from the store with
// those packages installed by its apt. The source is unpacked in the root and dpkg-buildpackage -b runs in an
// untrusted builder/sandbox with only a loopback network, a fixed build
// path, SOURCE_DATE_EPOCH from debian/changelog and a fixed environment
// (Env). The .deb files are normalised (ar headers) and written with a
// build record (Record) beside them.
//
// Compare reads two sets of .deb files and names the first entry that
// differs and its likely cause; Check builds twice under varied
// conditions (Varied, the clock moved by libfaketime among them) and
// compares; SameContent decides whether a
// rebuild differs from an older .deb only in timestamps and version.
package pkgbuild
