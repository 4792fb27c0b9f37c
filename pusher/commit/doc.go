// Package commit takes a planned sync live on a root: it stages the new
// files beside it, then renames them into place under a journal, so a
// root ends fully at the old image or fully at the new one. It reaches
// the root, the stage and the backups only through descriptors (package
// internal/beneath), never following a symlink a local user swapped in.
//
// The nouns:
//   - Stager: writes staged files (content streamed through a Sink and
//     checked against its hash, zeros as holes) and nodes into the stage
//     directory; a file staged whole survives a restart.
//   - Journal: the ops of one commit (package plan's Ops) with the
//     stage and backup directories; written before the first rename and
//     run again after a crash (every op is idempotent).
//   - Run: runs a journal's ops against a root, moving what they replace
//     into the backup directory; on an op that fails it undoes the ops
//     done, newest first, and returns an *Error saying whether the root
//     is back at its old image.
//   - Hooks: the tests' points of entry (crash at a step, race an op).
package commit
