// Package etcdtest runs real etcd servers (Debian's etcd-server) for tests
// and benchmarks: one single-node etcd per call in a temporary data
// directory on free loopback ports, stopped when the test ends, and a TCP
// proxy that a test can cut to put a client out of reach of etcd.
package etcdtest
