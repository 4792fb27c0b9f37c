// Package store is ingot's content-addressed image store.
//
// A store holds images (a manifest each) and the content of their regular
// files, cut by a content-defined chunker (FastCDC) into chunks of about
// 64 KiB. Its nouns:
//
//   - object: a chunk or a manifest, stored zstd-compressed under the
//     sha256 of its uncompressed bytes, and verified against that name on
//     every read. A file whose content is one chunk is that chunk: its
//     content hash names the object.
//   - chunk list: the chunks of a file of more than one chunk, named by the
//     file's content hash; verified when the file is put back together.
//   - image index: every chunk list of one image in one object, so a host
//     fetches one object instead of one per file.
//   - ref: name:tag → image digest, the only mutable files.
//   - pack (layout v2): chunks gathered in import order into frames of
//     about 2 MiB, each one zstd frame, appended to a file of a few MiB
//     named by its sha256; read a frame at a time with range requests.
//   - pack index (layout v2): object → (pack, frame, place in the
//     frame); one per pack, and one per image for readers that cannot
//     list the store (HTTP).
//
// Layout v1 (every chunk a file of its own) is still read, and written
// until Migrate converts the store.
//
// A Backend (package backend: a local directory, or any static HTTP server
// serving one, and the decorators that retry, fail over and count) holds
// the bytes; Store adds chunking (package chunks), compression and
// verification on top, and packs (package pack: the pack and pack index
// formats, where each packed object is, the pack writer).
// A store is not trusted by its readers: every read is bounded by its
// kind (limits.go) while it is read and while it is decompressed.
// The on-disk layout is described in docs/store.md.
package store
