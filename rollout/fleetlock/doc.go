// Package fleetlock serves the FleetLock protocol, the one Zincati and
// other self-rebooting hosts speak, over a rollout.Slots: a host asks for
// a slot before it reboots (POST /v1/pre-reboot) and gives it back once it
// is healthy again (POST /v1/steady-state). The slots are those of the
// rollout's per-set disruption budgets, so hosts that reboot themselves
// and hosts the controller updates share one budget. GET /v1/holders lists
// who holds a slot in every set.
//
// A request names a client id and a group. The id is the host's name in
// the inventory; the group is checked for form only, since the set a host
// belongs to comes from the inventory.
package fleetlock
