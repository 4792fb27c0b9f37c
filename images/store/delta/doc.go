// Package delta is the format of ingot's sub-file deltas, without the
// store that holds them (package store computes, stores and verifies
// them). When image B follows image A, most changed files differ from A's
// version at the same path in a few places. Its nouns:
//
//   - delta: B's version of a file compressed by zstd with A's version as
//     a raw dictionary (Encode, Apply), stored under deltas/<from>/<to>
//     (the two content hashes). It is verified where it is used: decoded
//     against bytes that hash to "from", the result must hash to "to".
//   - gzip delta: for gzip files that gzip -n at some level rebuilds
//     exactly, a delta of the decompressed contents, recompressed when
//     applied (Best picks the smaller of the two).
//   - delta pack: the small deltas of one image pair gathered into a few
//     files (Pack, EncodePacks, ParsePack), so a host asks only for the
//     deltas that exist; a Key names a delta by its two contents.
package delta
