// Package imagetar is the tar codec of images: Read turns a tar stream
// (plain, gzip or zstd; ustar, PAX or GNU) into an images.Manifest,
// handing each regular file's content to an images.FileFunc, and Write
// turns a Manifest, with content from an images.OpenFunc, back into a
// deterministic PAX tar. Its nouns:
//
//   - archive: the tar stream read or written, named in errors by
//     Options.Name;
//   - Error: a refused or unreadable archive, naming the entry (its
//     position, 1-based, and its name as archived);
//   - VerifiedContent: content whose source has already checked its
//     sha256, which Write does not hash again.
//
// The same tree gives the same manifest from images.WalkDir and from Read
// of a tar of it. docs/images.md describes what is refused and how names,
// hardlinks and xattrs are read and written.
package imagetar
