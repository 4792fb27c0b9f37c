package differ

import "github.com/ingotfleet/ingot/images"

// The report is built on images.Compare, the one per-path comparison that
// `ingot image verify` shares; these names keep the report's code short.
type DeltaKind = images.DeltaKind

// The kinds of change, as images.Compare names them.
const (
	Added   = images.Added
	Removed = images.Removed
	Changed = images.Changed
)
