// Package pusher brings hosts' root filesystems to an image: a Syncer
// verifies the image, scans the root, plans, fetches and stages, commits
// and runs triggers. Its steps live in subpackages, which never import
// this one:
//
//   - pusher/fetch: where the bytes come from (Source, StoreSource over
//     images/store with retries, failover and a bandwidth limit; chunks
//     the host already holds).
//   - pusher/plan: what must change (Plan, Op, Drift), a pure comparison.
//   - pusher/commit: staging and the journaled, undoable commit.
//
// Built on it: pusher/agent (the daemon serving a Syncer) and
// pusher/slots (A/B root slots); beside it pusher/api (the agent's wire
// types) and pusher/signing.
//
// The nouns here:
//   - Scan: the host's current state, a manifest of a directory made with
//     lstat only, hashing only what the StatCache cannot vouch for.
//   - Syncer: one root's sync engine: Sync, Rollback (from what the host
//     keeps), Recover (an interrupted commit), VerifyRoot. A sync fetches
//     a file from the first place that has it: the host itself (any path,
//     the last commit's backups, a booted slot), a delta against the
//     host's old version, or the chunks the host does not hold.
//   - State: what the agent remembers between syncs (its image, the one
//     before, the generation and its backups); Generations the newest
//     image seen under each signed name (anti-rollback).
//   - TreeDigest: the no-change check of a host already at its image.
//   - Tree: a root reached only beneath its descriptor, for pusher/slots.
//   - CrashHook: the crash tests' hook at every step of staging and
//     commit; only a build with -tags ingotcrash sets it (cmd/ingot).
package pusher
