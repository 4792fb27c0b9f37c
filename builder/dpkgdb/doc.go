// Package dpkgdb writes and reads dpkg's database in a root filesystem —
// the project's one reader of it, used by the builder, the differ, review
// and rpm2deb:
// /var/lib/dpkg/status (one paragraph per package), info/<pkg>.list (the
// paths a package installed), info/<pkg>.md5sums, info/<pkg>.conffiles and
// the maintainer scripts and other control files under info/, the file
// and explicit trigger interest files under triggers/, and the
// architecture list.
//
// The builder unpacks packages itself and then writes this database with
// every package in state "install ok unpacked", exactly as dpkg leaves it
// after `dpkg --unpack` (conffiles unpacked as <path>.dpkg-new and recorded
// with the hash "newconffile"), so that `dpkg --configure -a` inside the
// image finishes the installation as dpkg would. Info files of packages
// that are "Multi-Arch: same" are named <pkg>:<arch>.<what>, as dpkg does.
//
// Reading (Load for a directory, Open over any ReadFileFunc such as an
// image's files): Installed is one status paragraph; HasFiles is the one
// meaning of "installed" (files on disk: any state but not-installed and
// config-files); InfoName names info files; Owners maps listed paths to
// the packages that list them.
package dpkgdb
