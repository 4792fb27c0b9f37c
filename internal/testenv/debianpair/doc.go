// Package debianpair builds, once and cached, the real Debian image pair
// the heavy tests sync (pusher/testdata/debian-pair.sh): two trees, a
// store holding both signed with a test key, and the deltas A → B. The
// pusher's tests and the rollout's fleet simulation share it.
package debianpair
