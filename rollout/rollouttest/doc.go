// Package rollouttest holds the rollout's test harnesses: a fleet of fake
// agents that keep their own records of every sync, and helpers to read
// an audit log back.
package rollouttest
