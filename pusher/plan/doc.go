// Package plan says what a sync must do to take a host's root from its
// current state (a scan: images.Node) to an image's manifest. It is pure:
// it reads no files, so package pusher scans and commits and this package
// only compares.
//
// The nouns:
//   - Op: one step of a commit (mkdir, put, link, remove, attrs), each
//     idempotent, with what it replaces (Old, Backup) so it can be undone.
//   - Plan: the ordered ops, the paths they change (what triggers match),
//     the bytes to fetch, and why an image is refused for this host.
//   - Options: what the comparison needs beyond the two trees: local
//     paths, directories kept for the agent's state, mount points.
//   - Drift: the paths changed by hand since the last sync (a plan from
//     the host back to its own image).
package plan
