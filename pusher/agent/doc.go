// Package agent is the daemon on each host: the sync engine (package
// pusher) behind an API.
//
// The nouns:
//   - Agent: one host's daemon. It runs one sync or rollback at a time
//     (a run, numbered), keeps the last Result (package pusher/api), and serves the API over
//     mutual TLS (internal/pki): GET /v1/status, POST /v1/sync,
//     POST /v1/rollback, GET /metrics (Prometheus, client_golang) and,
//     with slots, /v1/slots/.
//   - Config: the agent's YAML file (LoadConfig; unknown keys refused),
//     with its slots section (SlotsConfig) and maintenance section.
//   - SlotManager: what does the slot syncs (package pusher/slots); the
//     agent only routes to it.
//   - Indicator: something on the host that says a rollout should wait
//     (a block file, a login, a check command, a failed last sync).
package agent
