// Command hostile is what a malicious maintainer script runs, for the
// sandbox's tests: it tries to get out of the sandbox by every route the
// untrusted sandbox closes, and prints one line per attempt:
//
//	hostile: NAME: blocked: ERROR
//	hostile: NAME: SUCCEEDED: WHAT
//
// It always exits 0, so that the installation goes on and the test reads
// the verdicts from the log. Tests build it static (CGO_ENABLED=0) and
// ship it inside a .deb or a test root.
package main
