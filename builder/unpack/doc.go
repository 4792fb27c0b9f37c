// Package unpack places packages' files in a root, as dpkg's unpack does.
//
// All unpacks many Debs (verified .deb files) into one root concurrently:
// each data.tar entry is written with its owner, mode, xattrs and mtime,
// conffiles as PATH.dpkg-new, and a package's file list and md5sums are
// returned as dpkgdb.Package entries in lock order. A path shipped by
// several packages goes to the one that Replaces the others (at their
// versions), as dpkg decides; otherwise it is a file conflict. A shared
// directory gets the attributes of the last package in lock order.
//
// A Writer creates paths beneath a root through directory descriptors
// opened with openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, so nothing can
// be written outside the root or through a symlink, whatever a package
// holds; the builder uses one for the files it adds itself (overlay,
// /dev, apt's files).
package unpack
