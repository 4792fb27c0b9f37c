// Package debrepo is ingot's client for Debian repositories.
//
// A Repo is a base URL (holding dists/ and pool/) with suites, components
// and the keyring that signs it. FetchIndex downloads a suite's InRelease,
// verifies its OpenPGP signature against the keyring (refusing unsigned or
// badly signed files), parses the Release paragraph, then downloads the
// Packages index of every component and architecture and checks its size
// and sha256 against the Release file before parsing it into Packages.
// HostRepos reads the build host's apt sources (one-line .list and deb822
// .sources files) with their Signed-By keyrings, for specs that name no
// repository.
//
// A Cache is a content-addressed store of downloaded files (named by
// sha256) filled by parallel, resumable downloads whose every byte is
// checked against the expected size and hash before it enters the cache.
//
// A LocalRepo is a repository ingot writes (write.go): a pool of .deb
// files, their Packages indices, a Release and an InRelease clear-signed
// with an OpenPGP key (NewRepoKey, LoadSigningKey), reproducibly.
//
// Every error names the file (URL or path) and, for parse errors, the line.
package debrepo
