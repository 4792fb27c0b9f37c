package pusher

import "github.com/ingotfleet/ingot/pusher/commit"

// CrashHook, when set, is called at every step of staging and commit with
// a step name; tests use it to kill the process at an exact point.
var CrashHook func(step string)

func crashPoint(step string) {
	if CrashHook != nil {
		CrashHook(step)
	}
}

// RaceHook, when set (tests only), is called just before the agent
// touches a host path: step is an op's kind in a commit, or "hash" when
// the scan reads a file. A test playing a local user makes its swap
// there, at the worst moment.
var RaceHook func(step, path string)

// hooks hands both to package commit, read when called (tests set them
// while Syncers exist).
var hooks = commit.Hooks{
	Crash: crashPoint,
	Race: func(step, path string) {
		if RaceHook != nil {
			RaceHook(step, path)
		}
	},
}
