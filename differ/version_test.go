package differ

import (
	"pault.ag/go/debian/version"

	"github.com/ingotfleet/ingot/internal/debversion"
)

// The differ's tests name the version functions as they were when the
// differ had its own; they are internal/debversion's now.

func ParseVersion(s string) (version.Version, error) { return debversion.Parse(s) }

func CompareVersions(a, b string) int { return debversion.CompareStrict(a, b) }
