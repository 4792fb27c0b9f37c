// Package agentclient drives ingot agents (package pusher) over their
// API, with mutual TLS (certificates from internal/pki).
//
// The nouns:
//   - Host: an agent to drive, a name and the address of its API; a
//     hosts file lists them (ParseHosts).
//   - Client: calls one agent: Status, Sync, Rollback, Wait for a run,
//     and the slot calls. The request and answer types (SyncRequest,
//     Status, Result) are the agent's, in package pusher.
//   - Push: drives many hosts to one image at once: canaries first,
//     then the rest with a concurrency limit, stopping new hosts past a
//     failure threshold. It returns one HostReport per host.
package agentclient
