// Package etcdstore keeps a rollout controller's state in etcd and elects
// one leader among the controllers that share it.
//
// A Store is both a rollout.Store and a rollout.Elector. Its keys live
// under one prefix per rollout: the state under PREFIX/data/, the
// candidates under PREFIX/leader/. A candidate holds a lease with a TTL
// and a key under the leader prefix bound to that lease; the candidate
// whose key was created first leads. Every Commit is one etcd transaction
// that only applies while the leader's key still exists at the revision it
// was created with (the fence), so a controller whose lease ran out cannot
// write, even with a request that reaches etcd late.
//
// Lost closes on this side before etcd can expire the lease: the deadline
// counts from the moment each keep-alive was sent, not from when its answer
// came back.
package etcdstore
