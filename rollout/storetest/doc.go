// Package storetest is the conformance suite for rollout.Store: every
// store (the local bbolt file, etcd) runs the same table of checks, so the
// controller can rely on the same behaviour from each.
package storetest
