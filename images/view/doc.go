// Package view is the one read-only view of an image: its manifest and
// the content of its regular files, wherever the image is.
//
// A View is an image by name, manifest and contents on request
// (ReadFiles). Mem holds one in memory (for tests: no root, no disk);
// Dir is a root directory walked into a manifest and read through an
// os.Root, so no read leaves it; Tar is an image tar (plain, gzip or
// zstd), contents matched by sha256 on a second pass, some kept from the
// first; Store is an image in the content-addressed store (any Content
// by sha256). FS serves a View as an io/fs file system (ReadFile,
// ReadDir, ReadLink, Lstat, Stat), for code written against io/fs.
//
// The differ compares two Views; rpm2deb's dependency resolver reads a
// target's dpkg database through an FS.
package view
