// Package rpm reads RPM packages: the lead, the signature header and the
// header (tags: name, version, file list, dependencies, scriptlets,
// changelog), then the compressed cpio payload holding the files' bytes.
//
// [Read] reads the header and checks it before the header library sees it:
// at most 65536 index entries and a 32 MiB data store per header, every
// entry's values inside the data store. The file list comes from the
// header's parallel arrays, each checked to have one value per file; the
// header, not the payload, is the authority on every file attribute
// (mode, owner, link target, device numbers, hardlink sets, capabilities).
//
// [Package.Payload] opens the payload once: gzip, bzip2, xz, lzma or zstd
// (the stream's magic must match the compressor the header names; a
// decompressor's window is at most 256 MiB), with the header's payload
// digest checked at the end of the stream. [CpioReader] reads it member by
// member: SVR4 newc and rpm's stripped form, names at most 4096 bytes.
//
// Errors wrap [ErrBadRPM], [ErrBadCpio] or [ErrUnknownCompression]; their
// texts are the ones the converter (builder/rpm2deb) has always printed.
package rpm
