// Package localfleet starts ingot agents on this machine, for the demo
// (`ingot demo`) and the tests; it is not part of the shipped library.
//
// The nouns:
//   - Fleet: agents on loopback with temporary roots, a fleet CA and a
//     controller certificate, and an agentclient.Client that drives them.
//   - Agent: one of them, run inside this process or as an `ingot agent`
//     process (Options.Binary), which Kill stops hard and Restart starts
//     again.
package localfleet
