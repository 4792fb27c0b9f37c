// Package pusher brings hosts' root filesystems to an image.
//
// The nouns:
//   - Source: where an image's manifest, signature, file contents and
//     sub-file deltas come from. StoreSource reads images/store (the one
//     store of ingot) from directories or HTTP mirrors, with retries,
//     fallthrough and a bandwidth limit, chunk by chunk (ChunkSource):
//     a sync fetches only the chunks the files it replaces do not hold,
//     or a delta from the host's version of a file.
//   - Scan: the host's current state, a manifest of a directory made with
//     lstat only, hashing only what the StatCache cannot vouch for.
//   - Plan: what a sync must do to take a root from its current state to
//     an image, and the drift (paths changed by hand since the last sync).
//   - Journal: the list of renames a commit performs; written before the
//     first one, replayed after a crash, so a root ends fully at the old
//     image or fully at the new one.
//   - Syncer: one root's sync engine: Sync, Rollback (from what the host
//     keeps), Recover (an interrupted commit), VerifyRoot. The daemon that
//     serves it is package pusher/agent, which this package never imports.
//   - CrashHook: the crash tests' hook at every step of staging and
//     commit; only a build with -tags ingotcrash sets it (cmd/ingot).
package pusher
