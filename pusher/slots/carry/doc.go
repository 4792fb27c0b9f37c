// Package carry brings a host's own configuration from its booted root
// into a freshly synced slot, and snapshots that configuration.
//
// The nouns:
//   - Carry: one carry-over from the booted root into the new slot: /etc
//     merged path by path, the local paths (the carry globs) copied
//     verbatim; Run returns its Report.
//   - Version: one side of a path's three-way merge (nil when absent).
//   - Merge3: the three-way decision for one /etc path from the image the
//     booted slot came from, the host's live version and the new image's,
//     a conflict settled by the path's policy; MergeLines is the line merge
//     (diff3) of the merge-lines policy.
//   - Decision: what Merge3 did to a path (an Action and why).
//   - Report: what a carry-over did: the paths carried, the /etc decisions,
//     the conflicts and those no policy resolved.
//   - Snapshot: a gzip-compressed tar of the host's configuration
//     (TakeSnapshot), written back by RestoreSnapshot.
package carry
