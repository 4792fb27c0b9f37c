package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/internal/cli"
)

// runApp runs the ingot command line in-process and returns its exit code,
// standard output and standard error.
func runApp(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	app := &cli.App{
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
		{[]string{"version"}, cli.ExitOK},
		{[]string{"no-such-command"}, cli.ExitUsage},
		{[]string{"version", "--no-such-flag"}, cli.ExitUsage},
		{[]string{"version", "extra"}, cli.ExitUsage},
		{[]string{"--log-level", "loud", "version"}, cli.ExitUsage},
		{[]string{"convert"}, cli.ExitUsage},
		{[]string{"convert", "rpm2dbe"}, cli.ExitUsage},
		{[]string{"convert", "rpm2deb"}, cli.ExitUsage},
		{[]string{"image", "no-such-command"}, cli.ExitUsage},
		{[]string{"completion"}, cli.ExitUsage},
		{[]string{"completion", "no-such-shell"}, cli.ExitUsage},
		{[]string{"completion", "bash", "extra"}, cli.ExitUsage},
		{[]string{"completion", "bash"}, cli.ExitOK},
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
	if code != cli.ExitOK || !strings.Contains(out, "Exit codes:") {
		t.Fatalf("exit %d, help without exit codes:\n%s", code, out)
	}
}
