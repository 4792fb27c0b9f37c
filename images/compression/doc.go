// Package compression reads and writes the compression of image tars:
// None, Gzip or Zstd (a Compression), told apart by their magic bytes
// (DetectCompression) or guessed from a file name (CompressionFromName).
// A decompressor reads every gzip member or zstd frame and accepts zero
// padding after the last (bsdtar pads to whole records); anything else
// after the stream is ErrTrailingGarbage. A compressor's output depends
// only on its input. imagetar reads and writes through it; callers
// choose a Compression for store.Export and builder.Finish here.
package compression
