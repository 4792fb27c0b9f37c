// Package fleetcmd holds ingot's fleet commands: agent, push, rollout,
// rollback, slot, ca, serve, and demo with its push and rollout steps.
package fleetcmd
