// Package chunks cuts file content into chunks and holds the formats
// that list them. Its nouns:
//
//   - chunk: a piece of content cut by a content-defined chunker
//     (FastCDC with normalised chunking, Chunker), MinChunk to MaxChunk
//     bytes, about AvgChunk on random data; named by the sha256 of its
//     bytes (Chunk: ID and Size).
//   - chunk list: the chunks of one file of more than one chunk, one line
//     each (ParseChunkList, FormatChunkList); ListLimit bounds it by the
//     file's size.
//   - index: the chunk lists of every multi-chunk file of one image, by
//     content hash (Index, ParseIndex, FormatIndex); IndexLimit bounds it
//     by the image's manifest.
//
// Package store stores chunks as objects and lists and indexes as files
// of their own kinds (docs/store.md).
package chunks
