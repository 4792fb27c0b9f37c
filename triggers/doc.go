// Package triggers runs commands when the paths they watch change.
//
// A Rule has a name, path globs (relative to the root, "**" matching any
// number of directories), a command, a timeout and a Phase: PhaseBefore
// rules run before a sync commits, PhaseAfter rules after. Rules come from
// an image (/etc/ingot/triggers.d/*.yaml) and from the agent's own config.
// Match picks, for one sync's list of changed paths, each rule that
// watches at least one of them, once, in a defined order (phase, then
// Order, then name); Run runs them with their timeouts and returns every
// rule's output, stopping at the first failure.
package triggers
