// Package rate is ingot's one token bucket of bytes, shared by the store
// server's egress limit (ingot serve --bwlimit) and the agent's download
// and disk-write limits.
//
// A Limiter (golang.org/x/time/rate underneath) holds Rate bytes per second with a burst of a fraction of a
// second; WaitN takes n tokens and sleeps while the bucket is in debt, so
// a caller may take more than the burst at once. A nil *Limiter lets
// everything through. Reader and Writer charge every read or write to a
// Limiter; Parse reads rates like "500K", "10M/s", "1.5G".
package rate
