//go:build ingotcrash

package fleetcmd

import (
	"os"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/pusher"
)

// This file is built only with -tags ingotcrash (the crash tests build
// ingot so, testenv.IngotCrashBinary): the shipped binary does not read
// these variables.

// installCrashHook lets the crash tests kill the agent at an exact step of
// a sync: INGOT_AGENT_CRASH_AT=N sends SIGKILL to the process at step N;
// INGOT_AGENT_STEPS=FILE records how many steps a sync took. Both are for
// tests only.
func installCrashHook(a *cli.App) {
	at, _ := strconv.Atoi(a.Getenv("INGOT_AGENT_CRASH_AT"))
	stepsFile := a.Getenv("INGOT_AGENT_STEPS")
	if at <= 0 && stepsFile == "" {
		return
	}
	var n atomic.Int64
	pusher.CrashHook = func(step string) {
		k := n.Add(1)
		if stepsFile != "" {
			os.WriteFile(stepsFile, []byte(strconv.FormatInt(k, 10)), 0o644)
		}
		if at > 0 && k == int64(at) {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
}
