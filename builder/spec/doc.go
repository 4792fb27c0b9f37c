// Package spec holds ingot's two builder input files.
//
// A Spec (spec.yaml, written by people) names an image: the Debian
// repositories to draw from (or none, meaning the build host's own apt
// sources), the architectures, the variant (the base package set), extra
// packages, path excludes with keep-exceptions, an overlay directory,
// customize commands and SOURCE_DATE_EPOCH.
//
// A Lock (spec.lock, written by `ingot lock`) pins the result of resolving
// a Spec: every repository with the digest of its signed InRelease, and
// every package with exact version, architecture, path in the repository,
// size and sha256. `ingot build` reads only the Lock to decide what to
// download, so two builds of one Lock install the same bytes.
//
// Both parsers are strict: an unknown key is an error naming the file and
// line, and Validate runs before a value is handed out. Lock.Write is
// deterministic: the same Lock always prints the same bytes.
package spec
