// Package resolve turns a spec's package request into the exact set of
// binary packages to install, the way apt would: the base set of the
// variant (Essential: yes packages, Priority: required, important), the
// spec's packages, and the closure of their Pre-Depends and Depends —
// alternatives tried in order, virtual packages satisfied through
// Provides (versioned Provides for versioned dependencies), version
// constraints compared with dpkg's ordering, Multi-Arch qualifiers — and
// then checks Conflicts and Breaks in the result.
//
// A Relation is one comma-separated item of a relationship field: a list
// of alternatives (Possibility) separated by "|". Candidates for a name
// are ordered as apt's policy orders them: suites marked NotAutomatic
// last, then the highest version, then the earliest suite.
package resolve
