// Package rollout takes an image to a fleet: a canary colo first, then
// waves, never more of a set of interchangeable hosts down at once than
// its budget allows, gated on health and on indicators from Prometheus
// alerts, halting by itself, with its state in a store that survives the
// controller.
package rollout
