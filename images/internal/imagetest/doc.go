// Package imagetest holds the test images and helpers that the tests of
// images and of imagetar share: the golden manifest (Golden) and an
// OpenFunc for its content, compressible sample data, a synthetic tree
// for benchmarks, and the check that keeps fuzz seed corpora in step. It
// is imported by tests only.
package imagetest
