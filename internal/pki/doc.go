// Package pki is the fleet's certificate authority for the agent API.
//
// The nouns:
//   - CA: a directory holding ca.pem and ca-key.pem (InitCA); it signs
//     every certificate of one fleet.
//   - Role: what a certificate lets its holder be. An agent certificate
//     (RoleAgent) names the addresses the agent is reached at and serves
//     only; a controller certificate (RoleController) is a TLS client only,
//     so an agent's key cannot drive other agents (IssueCert).
//   - ServerTLS and ClientTLS: the two sides of mutual TLS, each trusting
//     only the fleet CA.
package pki
