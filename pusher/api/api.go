package api

import "github.com/ingotfleet/ingot/triggers"

// SyncRequest is the body of POST /v1/sync.
type SyncRequest struct {
	Image  string   `json:"image"`
	Stores []string `json:"stores,omitempty"` // override the configured store URLs
	DryRun bool     `json:"dry_run,omitempty"`
	// BWLimit overrides the download limit for this sync ("10M").
	BWLimit string `json:"bwlimit,omitempty"`
	// Ref is the name:tag the controller resolved to Image (pusher.SyncOptions.Ref).
	Ref string `json:"ref,omitempty"`
	// AllowRollback accepts an image older than the host's (pusher.SyncOptions).
	AllowRollback bool `json:"allow_rollback,omitempty"`
	// Slot "inactive" writes the slot that is not booted instead of the
	// root; Switch then switches to it (docs/slots.md).
	Slot   string `json:"slot,omitempty"`
	Switch bool   `json:"switch,omitempty"`
}

// Status is what GET /v1/status returns.
type Status struct {
	Name     string           `json:"name"`
	Image    string           `json:"image,omitempty"`
	Previous string           `json:"previous,omitempty"`
	Syncing  bool             `json:"syncing"`
	Healthy  bool             `json:"healthy"`
	LastID   int64            `json:"last_id"`
	RunID    int64            `json:"run_id"`
	Last     *Result          `json:"last,omitempty"`
	Progress ProgressSnapshot `json:"progress"`
	// Indicators are what on the host says a rollout should wait
	// (config maintenance:, and a failed last sync); see pusher/agent/indicators.go.
	Indicators []Indicator `json:"indicators,omitempty"`
	// Slots, on an agent with root slots (pusher/agent/agent_slots.go).
	Slots *SlotSummary `json:"slots,omitempty"`
}

// Result is what one sync (or rollback) did: the engine's answer
// (pusher.Syncer.Sync) and the API's.
type Result struct {
	Image      string `json:"image"`
	From       string `json:"from,omitempty"`
	OK         bool   `json:"ok"`
	Error      string `json:"error,omitempty"`
	Changed    int    `json:"changed"`
	Removed    int    `json:"removed"`
	Fetched    int64  `json:"fetched_bytes"`
	Written    int64  `json:"written_bytes"`
	Deltas     int64  `json:"deltas"`
	LocalFiles int64  `json:"local_files"`
	// Chunks of fetched files: read from the host's old files, or fetched.
	ReusedChunks  int64             `json:"reused_chunks"`
	ReusedBytes   int64             `json:"reused_bytes"`
	FetchedChunks int64             `json:"fetched_chunks"`
	Drift         []string          `json:"drift,omitempty"`
	Triggers      []triggers.Result `json:"triggers,omitempty"`
	Seconds       float64           `json:"seconds"`
	Rollback      bool              `json:"rollback,omitempty"`
	// A slot sync's slot, its carry-over report (carry.Report), the
	// snapshot taken before it, and whether it switched.
	Slot     string `json:"slot,omitempty"`
	Carry    any    `json:"carry,omitempty"`
	Snapshot string `json:"snapshot,omitempty"`
	Switched bool   `json:"switched,omitempty"`
}

// ProgressSnapshot is a copy of a sync's progress (pusher.Progress),
// taken while it runs.
type ProgressSnapshot struct {
	Phase      string `json:"phase"`
	FilesTotal int64  `json:"files_total"`
	FilesDone  int64  `json:"files_done"`
	BytesTotal int64  `json:"bytes_total"`
	BytesDone  int64  `json:"bytes_done"`
	Fetched    int64  `json:"fetched"`
	Deltas     int64  `json:"deltas"`
	Local      int64  `json:"local"`
}
