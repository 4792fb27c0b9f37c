// Package api serves a rollout controller over HTTP: status, commands,
// the plan, Prometheus metrics and FleetLock.
package api
