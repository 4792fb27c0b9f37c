// Package compress opens compressed streams of outside input — members of
// .deb files, RPM payloads — with explicit limits, so that a crafted
// header cannot make a decoder allocate without bound. It is the one place
// that knows the formats' window and dictionary headers.
//
// Image tars (compression.NewDecompressor) keep their own reader: it reads
// gzip members and zstd frames one by one to stop at the tar's zero
// padding, which no caller here needs.
package compress
