// Package normalize makes a root filesystem (or single files)
// reproducible: it rewrites the parts of files that record when or where
// they were made, and clamps every mtime to SOURCE_DATE_EPOCH.
//
//   - gzip: the header's MTIME becomes 0, the stored file name and comment
//     are dropped and the OS byte becomes 3 (Unix), as `gzip -n` writes;
//     the compressed data is not touched.
//   - Python .pyc (timestamp-based): the recorded source mtime and size are
//     set to the source file's clamped mtime and its size, so the cache stays
//     valid after clamping; hash-based pycs are left alone.
//   - ar archives (.a, .deb): every member header gets mtime 0, uid 0,
//     gid 0 and mode 644, as `ar D` writes.
//   - zip, jar, whl: DOS times in local and central headers, and the
//     extended-timestamp extra fields, are clamped to SOURCE_DATE_EPOCH.
//   - every path's mtime: min(mtime, SOURCE_DATE_EPOCH).
//
// Files are rewritten in place (same inode, so hard links and ownership
// stay), and only when something changes. The per-build noise list (files
// to delete, blank or fix because they differ on every build) is in
// noise.go, versioned, each entry with its reason and action.
package normalize
