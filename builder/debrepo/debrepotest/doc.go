// Package debrepotest builds real Debian repositories for tests: .deb
// files made with dpkg-deb, Packages indices made with dpkg-scanpackages,
// a Release file with sha256 hashes, and an InRelease clear-signed by gpg
// with a throwaway key generated for the test. Tests of the builder, the
// differ and rpm2deb share it.
package debrepotest
