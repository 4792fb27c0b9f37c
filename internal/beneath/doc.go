// Package beneath reaches the paths of a directory tree that other users
// may change while it is read or written, without ever being redirected
// out of it.
//
// Its nouns:
//
//   - A Dir is a directory held open by its descriptor. Every path below
//     it is resolved by the kernel (openat2 with RESOLVE_BENEATH and
//     RESOLVE_NO_SYMLINKS) beneath that descriptor, following no symlink
//     (nor /proc's magic links) on the way or at the end: a directory
//     swapped for a symlink makes the call fail instead of leading
//     elsewhere. No path is checked first and used later.
//   - A rel is a path relative to a Dir ("usr/bin/ls", "." for the Dir
//     itself), as image entries spell them.
//   - A dirfd and a name are the pair every *at call works on: an open
//     directory (from Dir.OpenDir or Dir.Parent) and one entry in it.
//   - A Target is a node whose attributes (owner, mode, xattrs, mtime) are
//     read or set through a descriptor of the node itself, or, for a
//     symlink, through its name in an open directory; Attrs are those
//     attributes.
//
// Regular files are opened only if they are regular files (OpenRegular):
// non-blocking, so a FIFO swapped in is an error, not a hang.
package beneath
