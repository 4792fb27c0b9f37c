// Package provides answers, from a target system's dpkg database, which
// Debian package provides a path or a shared library: the resolver
// rpm2deb's conversion turns RPM file and soname dependencies into
// Depends with.
//
// A [DpkgResolver] reads var/lib/dpkg/status, info/*.list, *.shlibs and
// *.symbols from a [TargetFS]: a root directory ([NewRootResolver]), or
// any image (in the store, a tar, in memory) through images/view's FS.
package provides
