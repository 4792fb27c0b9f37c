// Package api holds the agent's wire types: what its HTTP API (package
// pusher/agent) takes and answers, and what agentclient and rollout send
// and read. It holds types and their pure judgements only, so a client
// does not link the sync engine.
//
// The nouns:
//   - SyncRequest: the body of POST /v1/sync (an image, stores, a limit,
//     a slot).
//   - Status: the answer of GET /v1/status: the image, the run being
//     done (RunID) and the last one finished (LastID, Last), Progress,
//     Indicators and, on a host with slots, a SlotSummary.
//   - Result: what one sync or rollback did (also the engine's return).
//   - Indicator: one thing on the host that says a rollout should wait.
//   - SlotSummary, SlotOutcome: the slots' state as a controller follows
//     a slot sync across the switch and reboot (Status.SlotSyncOutcome).
package api
