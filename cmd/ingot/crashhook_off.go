//go:build !ingotcrash

package main

// installCrashHook does nothing in the shipped binary: the crash tests'
// hook (crashhook.go) is built only with -tags ingotcrash.
func installCrashHook(*App) {}
