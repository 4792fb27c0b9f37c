// Package sandboxtest builds tiny root filesystems for tests: a few host
// programs and the shared libraries they need, laid out like a merged-/usr
// Debian root. It is for tests that need "a root with a shell" without a
// whole Debian image.
package sandboxtest
