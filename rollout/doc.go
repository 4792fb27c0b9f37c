// Package rollout takes an image to a fleet: a canary colo first, then
// waves, never more of a set of interchangeable hosts down at once than
// its budget allows, gated on health and on indicators from Prometheus
// alerts, halting by itself, with its state in a store that survives the
// controller.
//
// The nouns:
//   - Plan: the inventory cut into stages by the policy (package
//     rollout/config reads both files): stage 0 the canary colos, then the
//     waves.
//   - State: the rollout's image and each host's phase (HostState), kept in
//     a Store; every transition is committed before it is acted on.
//   - Decide: the pure decision of one tick (who starts, who waits and why,
//     who finishes), from the plan, the state, the indicators and the
//     budgets; the Controller applies it and does the work through Agents.
//   - Indicators: each host's signals (MaintenanceRequired, Blocked,
//     Unavailable) from firing Prometheus or Alertmanager alerts, read by
//     AlertSource, and from the agents' own status.
//   - Event: one line of the audit log.
//   - Slots: the per-set disruption budgets as FleetLock clients see them.
package rollout
