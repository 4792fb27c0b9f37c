// Package cli is what ingot's commands share: the App (streams,
// environment, the store and cache directories), the root command, the
// exit codes and the errors that select them, argument checks that fail
// with a usage error, and the framework of `ingot demo`, whose steps the
// command packages add.
//
// The commands themselves live in imagecmd (image, store, key, diff,
// review), buildcmd (build, lock, pkg, normalize, convert) and fleetcmd
// (agent, push, rollout, rollback, slot, ca, serve, demo); each adds its
// commands with Register from init, and cmd/ingot imports them.
package cli
