// Package deb reads Debian binary packages (.deb files).
//
// A .deb is an ar archive of three members: debian-binary ("2.0\n"),
// control.tar (the package's metadata: the control file, maintainer
// scripts, conffiles, md5sums, triggers…) and data.tar (the files it
// installs), each tar uncompressed or compressed with gzip, xz, zstd or
// bzip2. Reader walks those members in one pass over an io.Reader:
// Control first, then Data as a tar stream. ReadParagraphs is the
// project's one reader of deb822 text (control files, dpkg's status,
// Packages, Release, apt .sources): a Paragraph holds its Fields in order,
// each with its line, its value as written (Get) and decoded (Text).
//
// WriteControlTar, NewCompressor and WriteDeb write packages as dpkg-deb
// does, the same bytes for the same input (rpm2deb uses them).
// Decompression goes through internal/compress with an explicit memory
// limit; ReaderOptions choose the Go xz reader over the host's xz(1).
//
// Every error names the package (the name given to NewReader) and the
// member or line at fault; sizes are bounded so a hostile package cannot
// make the reader allocate without limit.
package deb
