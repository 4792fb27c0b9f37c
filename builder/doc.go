// Package builder builds golden images from pinned Debian packages.
//
// A Build takes an Input (the locked packages as verified .deb files in a
// cache, the build time SOURCE_DATE_EPOCH, excludes, keeps, an overlay,
// customize commands) and makes a root filesystem the way dpkg would:
// every package's data.tar unpacked in parallel straight into the root
// (builder/unpack), the dpkg database written with every package "install ok
// unpacked" (builder/dpkgdb), then inside the hermetic sandbox
// (builder/sandbox) the preinst scripts in dependency order and
// `dpkg --configure -a`, which runs every postinst and leaves a real dpkg
// database. Then the overlay, the customize commands, the excludes, the
// per-build noise list and normalisation (builder/normalize) make the tree
// reproducible; the tree is walked into a manifest and imported into the
// image store, with a package list, an SPDX SBOM and build provenance
// beside it.
//
// Nothing in a Build reads the clock, the host's environment or its
// locale: time comes from SOURCE_DATE_EPOCH, the environment of scripts is
// fixed by the sandbox, and every directory is walked in sorted order.
package builder
