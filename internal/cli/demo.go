package cli

import (
	"context"
	"slices"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
)

// Demo is the state the steps of `ingot demo` share.
type Demo struct {
	App    *App
	Dir    string // scratch folder: root, tars, store
	Root   string // the small root tree
	Store  *store.Store
	Digest images.Digest // the image imported from the tree
	Tar    string        // the tar the image was imported from
	Build  bool          // build a Debian image rather than make a small tree
}

// Say prints one line of the demo's narration.
func (d *Demo) Say(format string, args ...any) { d.App.Printf(format+"\n", args...) }

// DemoStep is one step of `ingot demo`. Steps run in order of rank; each
// area (image, build, fleet) adds its own from its own files with
// RegisterDemoStep, so the demo grows without editing a shared file.
type DemoStep struct {
	Rank int
	Name string
	Run  func(ctx context.Context, d *Demo) error
	When func(d *Demo) bool // nil: always
}

var demoSteps []DemoStep

// RegisterDemoStep adds a step to `ingot demo` (from init).
func RegisterDemoStep(s DemoStep) { demoSteps = append(demoSteps, s) }

// DemoSteps returns the steps that apply to d, in order of rank.
func DemoSteps(d *Demo) []DemoStep {
	steps := slices.DeleteFunc(slices.Clone(demoSteps), func(s DemoStep) bool { return s.When != nil && !s.When(d) })
	slices.SortStableFunc(steps, func(x, y DemoStep) int { return x.Rank - y.Rank })
	return steps
}
