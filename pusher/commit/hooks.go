package commit

// Hooks let tests act at exact points of staging and commit; nil fields
// do nothing. Package pusher passes its CrashHook and RaceHook.
type Hooks struct {
	// Crash is called at every step of staging and commit with a step
	// name ("write", "staged", "aside", "op"): the crash tests kill the
	// process there.
	Crash func(step string)
	// Race is called just before a commit op touches a host path (step
	// is the op's kind): a test playing a local user swaps it there.
	Race func(step, path string)
}

func (h Hooks) crash(step string) {
	if h.Crash != nil {
		h.Crash(step)
	}
}

func (h Hooks) race(step, path string) {
	if h.Race != nil {
		h.Race(step, path)
	}
}
