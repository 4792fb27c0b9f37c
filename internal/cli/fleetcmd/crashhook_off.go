//go:build !ingotcrash

package fleetcmd

import "github.com/ingotfleet/ingot/internal/cli"

// installCrashHook does nothing in the shipped binary: the crash tests'
// hook (crashhook.go) is built only with -tags ingotcrash.
func installCrashHook(*cli.App) {}
