// Package imagecmd holds ingot's image commands: image (import, export,
// ls, manifest, delta, sign, verify), store, key, diff and review.
package imagecmd
