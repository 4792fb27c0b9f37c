// Package config reads a rollout's two input files, strictly (unknown
// keys refused) and with every error naming the file and line.
//
// The nouns:
//   - Host: one machine of the inventory: its name, agent address, colo
//     and the sets it belongs to.
//   - Inventory: the fleet: hosts, their colos, and the sets of
//     interchangeable hosts (listed, or derived from labels by set_by). A
//     plain pusher hosts file reads as one colo "default" and one set "all".
//   - Set: hosts of which only a budget (max_unavailable) may be down at once.
//   - Policy: how a rollout moves: the canary colos and bake, the waves,
//     per-set budgets, cooldown, health gates, indicator sources,
//     maintenance windows, blackout dates and the failure limit; checked
//     against the inventory when parsed.
//   - Gate: one health check after a host's sync (HTTP, TCP or PromQL).
//   - Window: when hosts of some sets may start; Policy.Open answers it.
package config
