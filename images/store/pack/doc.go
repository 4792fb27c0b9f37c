// Package pack is layout v2 of an image store: chunks gathered into
// packs, and the indexes that say where each one is. Its nouns:
//
//   - frame: one zstd frame of about FrameTarget bytes holding one
//     object or several small ones, in the order they were stored; read
//     whole with one range request and decompressed (at most MaxFrame
//     bytes, CompressedLimit of that compressed).
//   - pack: frames one after another, closed at about 4 MiB, named by the
//     sha256 of its bytes (backend.KindPack).
//   - pack index: object → Loc (pack, frame, place in the frame); one per
//     pack (backend.KindPackIndex) and one per image
//     (backend.KindImagePacks, bounded by IndexLimit). ParseIndex takes
//     only what FormatIndex writes.
//   - Set: what a Store knows of the packs of its backend: the places read
//     so far, the image pack indexes to read at the next object it cannot
//     place, the frames last decompressed; Has and StoredSize also look
//     for an object loose (a file of its own, layout v1).
//   - Writer: gathers compressed frames into packs and writes each pack,
//     then its index, when it is full.
//
// Every object read from a pack is checked against its name, as a loose
// one is. docs/store.md describes the format.
package pack
