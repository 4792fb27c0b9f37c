// Package fetch is where a sync gets an image's bytes from: the store
// (images/store) read through its backend decorators, and the files the
// host already holds. It never writes the host; package pusher stages
// what it returns.
//
// The nouns:
//   - Source: an image's manifest, signature, file contents and sub-file
//     deltas, every byte verified against the hash it was asked by.
//   - ChunkSource: a Source that also serves content chunk by chunk, so
//     a sync fetches only the chunks the host does not hold.
//   - StoreSource: the Source over one store at one or more locations
//     (directories, HTTP mirrors), with retries (backend.Retry),
//     failover (backend.Failover), counting and a bandwidth limit;
//     DeltaPacks are an image pair's small deltas read in one request.
//   - HostFile, LocalChunks: files on the host (beneath a descriptor)
//     and the index of the chunks they hold, read instead of fetched.
//   - Sink: where content goes as it arrives, hashed as it is written;
//     MemSink holds a small file in memory.
package fetch
