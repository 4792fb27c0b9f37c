package triggers

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ingotfleet/ingot/internal/glob"
)

// Phase says when a rule runs relative to a sync's commit.
type Phase string

// The phases. Before rules see the old files still in place and may veto
// the commit by failing; after rules see the new files.
const (
	PhaseBefore Phase = "before"
	PhaseAfter  Phase = "after"
)

// DefaultTimeout bounds a rule that names no timeout.
const DefaultTimeout = 5 * time.Minute

// Rule is one trigger: run Command when any of Paths changed.
type Rule struct {
	Name    string        `yaml:"name" json:"name"`
	Paths   []string      `yaml:"paths" json:"paths"`
	Command []string      `yaml:"command" json:"command"`
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
	Phase   Phase         `yaml:"phase" json:"phase"`
	// Order sorts rules of one phase; lower first, then by name.
	Order int `yaml:"order" json:"order"`
	// Source is where the rule was read from (file name), for messages.
	Source string `yaml:"-" json:"source,omitempty"`

	globs glob.Set
}

// Validate checks a rule and compiles its globs. It fills in the defaults:
// PhaseAfter, DefaultTimeout.
func (r *Rule) Validate() error {
	where := r.Name
	if r.Source != "" {
		where = r.Source + ": " + r.Name
	}
	if r.Name == "" {
		return fmt.Errorf("%s: trigger without a name", r.Source)
	}
	if strings.ContainsAny(r.Name, " \t\n/") {
		return fmt.Errorf("%s: trigger name must not hold spaces or slashes", where)
	}
	if len(r.Paths) == 0 {
		return fmt.Errorf("%s: trigger watches no paths", where)
	}
	if len(r.Command) == 0 || r.Command[0] == "" {
		return fmt.Errorf("%s: trigger has no command", where)
	}
	switch r.Phase {
	case "":
		r.Phase = PhaseAfter
	case PhaseBefore, PhaseAfter:
	default:
		return fmt.Errorf("%s: phase %q is neither %q nor %q", where, r.Phase, PhaseBefore, PhaseAfter)
	}
	if r.Timeout < 0 {
		return fmt.Errorf("%s: negative timeout", where)
	}
	if r.Timeout == 0 {
		r.Timeout = DefaultTimeout
	}
	g, err := glob.CompileSet(r.Paths)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	r.globs = g
	return nil
}

// Watches reports whether the rule watches path p.
func (r *Rule) Watches(p string) bool {
	if r.globs == nil && len(r.Paths) > 0 {
		r.globs, _ = glob.CompileSet(r.Paths)
	}
	return r.globs.Match(p)
}

// file is the YAML form of a rules file.
type file struct {
	Triggers []Rule `yaml:"triggers"`
}

// Parse reads a rules file: a YAML document with a "triggers" list.
// Unknown keys are errors. name names the input in messages.
func Parse(name string, r io.Reader) ([]Rule, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var f file
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	seen := map[string]bool{}
	for i := range f.Triggers {
		f.Triggers[i].Source = name
		if err := f.Triggers[i].Validate(); err != nil {
			return nil, err
		}
		if seen[f.Triggers[i].Name] {
			return nil, fmt.Errorf("%s: trigger %q defined twice", name, f.Triggers[i].Name)
		}
		seen[f.Triggers[i].Name] = true
	}
	return f.Triggers, nil
}

// ParseBytes is Parse of a byte slice.
func ParseBytes(name string, b []byte) ([]Rule, error) { return Parse(name, bytes.NewReader(b)) }

// ImageDir is where an image ships its rules, relative to its root.
const ImageDir = "etc/ingot/triggers.d"

// LoadDir reads every *.yaml file of dir in name order. A missing
// directory holds no rules.
func LoadDir(dir string) ([]Rule, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var all []Rule
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("reading trigger rules: %w", err)
		}
		rs, err := ParseBytes(n, b)
		if err != nil {
			return nil, err
		}
		all = append(all, rs...)
	}
	return all, nil
}

// Merge joins rule lists; a later rule replaces an earlier one of the same
// name (so the agent's config can override a rule an image ships).
func Merge(lists ...[]Rule) []Rule {
	idx := map[string]int{}
	var out []Rule
	for _, l := range lists {
		for _, r := range l {
			if i, ok := idx[r.Name]; ok {
				out[i] = r
				continue
			}
			idx[r.Name] = len(out)
			out = append(out, r)
		}
	}
	return out
}

// Match is a rule chosen for one sync with the changed paths it watches.
type Match struct {
	Rule  Rule
	Paths []string
}

// Select returns the rules of the given phase that watch at least one of
// changed, each once, ordered by Order then Name, each with the sorted
// list of its changed paths.
func Select(rules []Rule, phase Phase, changed []string) []Match {
	var out []Match
	for _, r := range rules {
		if r.Phase != phase && !(r.Phase == "" && phase == PhaseAfter) {
			continue
		}
		var ps []string
		for _, p := range changed {
			if r.Watches(p) {
				ps = append(ps, p)
			}
		}
		if len(ps) > 0 {
			slices.Sort(ps)
			ps = slices.Compact(ps)
			out = append(out, Match{Rule: r, Paths: ps})
		}
	}
	slices.SortStableFunc(out, func(a, b Match) int {
		if a.Rule.Order != b.Rule.Order {
			return a.Rule.Order - b.Rule.Order
		}
		return strings.Compare(a.Rule.Name, b.Rule.Name)
	})
	return out
}
