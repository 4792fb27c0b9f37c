package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// runApp runs the ingot command line in-process and returns its exit code,
// standard output and standard error.
func runApp(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	app := &App{
		Stdin:  strings.NewReader(""),
		Stdout: &stdout,
		Stderr: &stderr,
		Args:   args,
		Getenv: func(k string) string { return env[k] },
	}
	code := app.Execute(context.Background())
	return code, stdout.String(), stderr.String()
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"version"}, exitOK},
		{[]string{"no-such-command"}, exitUsage},
		{[]string{"version", "--no-such-flag"}, exitUsage},
		{[]string{"version", "extra"}, exitUsage},
		{[]string{"--log-level", "loud", "version"}, exitUsage},
		{[]string{"convert"}, exitUsage},
		{[]string{"convert", "rpm2dbe"}, exitUsage},
		{[]string{"convert", "rpm2deb"}, exitUsage},
		{[]string{"image", "no-such-command"}, exitUsage},
		{[]string{"completion"}, exitUsage},
		{[]string{"completion", "no-such-shell"}, exitUsage},
		{[]string{"completion", "bash", "extra"}, exitUsage},
		{[]string{"completion", "bash"}, exitOK},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, stderr := runApp(t, nil, tc.args...)
			if code != tc.want {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, tc.want, stderr)
			}
		})
	}
}

func TestHelpListsExitCodes(t *testing.T) {
	code, out, _ := runApp(t, nil, "--help")
	if code != exitOK || !strings.Contains(out, "Exit codes:") {
		t.Fatalf("exit %d, help without exit codes:\n%s", code, out)
	}
}

func TestStoreDirPrecedence(t *testing.T) {
	a := &App{Getenv: func(k string) string { return map[string]string{"INGOT_STORE": "/env/store"}[k] }}
	if got := a.StoreDir(); got != "/env/store" {
		t.Errorf("StoreDir with $INGOT_STORE = %q", got)
	}
	a.storeFlag = "/flag/store"
	if got := a.StoreDir(); got != "/flag/store" {
		t.Errorf("StoreDir with --store = %q", got)
	}
}
