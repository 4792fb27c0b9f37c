// Package glob is ingot's one dialect of path patterns, used by a build
// spec's exclude and keep lists, the builder's noise rules, triggers,
// slot carry lists, the agent's local paths and `ingot image verify
// --exclude`.
//
// A pattern is a slash-separated path relative to an image's root; a
// leading "/" (and a trailing one) is ignored, so "/etc/ssh/*" and
// "etc/ssh/*" are the same pattern. Paths are matched the same way. Within
// one segment "*", "?" and "[...]" work as in path.Match and never cross a
// "/"; a segment that is exactly "**" matches any number of segments, zero
// included, so "var/log/**" matches "var/log" and everything under it and
// "usr/**/*.so*" matches "usr/lib/libc.so.6". "**" inside a segment, empty
// segments, "." and ".." are refused. The root itself matches nothing.
//
// Callers add their own rules on top by rewriting patterns, not by another
// matcher: a spec's "X/*" also removes everything below X's children,
// which is the pattern "X/*/**".
package glob
