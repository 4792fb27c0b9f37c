// Package boltstore keeps a rollout controller's state in a local bbolt
// file: one controller, no election. Every Commit is one bbolt
// transaction, written and synced to disk before it returns.
package boltstore
