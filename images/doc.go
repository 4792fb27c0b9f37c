// Package images is the image model of ingot.
//
// An image is a Manifest, an ordered list of every path of a Linux root
// filesystem (an Entry each: type, mode, owner, size, content hash, link
// target, device numbers, xattrs, mtime), plus the content of every regular
// file. The manifest has one canonical ASCII form; the sha256 of those bytes
// is the image's Digest. A Manifest is made from a live tree by WalkDir
// (on the walker WalkTree) and compared with another by Compare (a Delta
// per path).
//
// Subpackages: imagetar reads and writes images as tars, compression the
// gzip and zstd around them, store keeps images content-addressed, and
// view reads any of them (a tar, a directory, the store, memory) as one
// read-only image.
// images imports no other package of ingot but internal/beneath; the
// packages above it import images, never the other way.
package images
