// Package images is the image model of ingot.
//
// An image is a Manifest, an ordered list of every path of a Linux root
// filesystem (an Entry each: type, mode, owner, size, content hash, link
// target, device numbers, xattrs, mtime), plus the content of every regular
// file. The manifest has one canonical ASCII form; the sha256 of those bytes
// is the image's Digest.
//
// images is the leaf of the module: it imports no other package of ingot.
package images
