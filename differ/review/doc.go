// Package review reports what installing one package does to an image.
//
// Run copies a base image (a tar or a directory) twice, installs the
// package file into one copy with apt inside the builder's untrusted
// sandbox (dependencies downloaded first from the base's own sources, in
// a separate step with network), and compares the two copies with the
// differ. The Report sorts the differ's changes by role: the package's own
// files, its dependencies, users and groups, alternatives, service links,
// what the maintainer scripts made outside every file list, and dpkg's
// bookkeeping; with the package's conffiles, scripts and changelog
// (DebInfo, read natively by ReadDeb). Build makes the same Report from
// any two images/view Views. A Report renders as text or JSON.
package review
