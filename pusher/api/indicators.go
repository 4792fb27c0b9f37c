package api

// Indicator kinds an agent reports (the rollout's kinds).
const (
	IndicatorBlocked     = "Blocked"
	IndicatorUnavailable = "Unavailable"
)

// Indicator sources.
const (
	SourceBlockFile = "block_file"
	SourceLogins    = "logins"
	SourceCommand   = "check_command"
	SourceLastSync  = "last_sync"
)

// Indicator is one thing on the host that says the rollout should wait.
type Indicator struct {
	Kind   string `json:"kind"`   // Blocked or Unavailable
	Source string `json:"source"` // block_file, logins, check_command, last_sync
	Reason string `json:"reason"`
}
