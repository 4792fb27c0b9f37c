// Package differ compares two images and reports what changed, for review.
//
// The differ reads an image as an images/view View: its manifest and, on
// request, the content of some of its regular files (from a tar, a
// directory or the store; Open picks by path). Diff compares two views
// into a Report: the package-level changes first (added, removed,
// upgraded with the changelog entries between the two versions), then
// every changed path with each changed attribute, grouped by the package
// that owns the path in the image's dpkg database ("unowned" for the
// rest), with unified diffs of text files (also inside .gz files). A Report renders as text, JSON or one
// self-contained HTML page; the same inputs always give the same bytes.
//
// What installing one package does to an image (a package review) is
// differ/review, built on Diff.
package differ
