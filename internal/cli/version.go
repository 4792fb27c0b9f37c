package cli

import "runtime/debug"

// version is set at link time (-ldflags "-X
// github.com/ingotfleet/ingot/internal/cli.version=…"); otherwise the
// module version or VCS revision from the build info is used.
var version = ""

// Version is ingot's version string, recorded in build provenance.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return "devel"
}
