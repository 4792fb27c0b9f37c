package rpm2deb

import (
	"fmt"

	"github.com/ingotfleet/ingot/builder/rpm"
	"github.com/ingotfleet/ingot/builder/rpm2deb/debmap"
)

// readChangelog returns the RPM's changelog entries in header order (rpm
// stores them newest first). The rpm library's ChangeLog() reads the
// wrong tag; these are the right ones.
func readChangelog(p *rpm.Package) ([]debmap.ChangelogEntry, error) {
	times := p.Ints(rpm.TagChangelogTime)
	names := p.Strings(rpm.TagChangelogName)
	texts := p.Strings(rpm.TagChangelogText)
	if len(times) != len(names) || len(names) != len(texts) {
		return nil, fmt.Errorf("%s: %w: changelog has %d times, %d names and %d texts", p.Name, rpm.ErrBadRPM, len(times), len(names), len(texts))
	}
	out := make([]debmap.ChangelogEntry, len(names))
	for i := range names {
		out[i] = debmap.ChangelogEntry{Time: times[i], Name: names[i], Text: texts[i]}
	}
	return out, nil
}
