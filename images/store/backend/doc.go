// Package backend holds the bytes of an image store, by handle, and
// decides what to do when a read fails. Its nouns:
//
//   - kind and handle: the class of a stored file (objects, lists, images,
//     refs, signatures, deltas, packs, pack indexes, image pack indexes)
//     and its name; Handle.Path is its place under a directory or a base
//     URL, and only a valid handle becomes a path.
//   - Backend: Get (bounded by a limit while reading), GetRange, Has, Put
//     (atomic), Delete, List, Sync, Location. It knows nothing of
//     chunks, compression or verification: package store does.
//   - Local: a directory (the layout marker names its version); HTTP:
//     any static server of one, exactly one request per call; Server: the
//     read-only handler `ingot serve` runs.
//   - decorators, one concern each around a Backend: Retry (another try
//     at the same location, for ErrTransient), Failover (the next
//     location, by one rule: movesOn), Count (reads, bytes, failures).
//   - check: the reader's verdict on bytes it got (GetChecked); a Failover
//     takes bytes that fail it from its next location.
//
// Every Backend passes the conformance suite in images/store/storetest.
package backend
