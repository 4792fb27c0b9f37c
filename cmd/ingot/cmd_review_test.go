package main

import (
	"strings"
	"testing"
)

// TestReviewUsage: the command line of ingot review (the review itself is
// tested on a real image in package differ).
func TestReviewUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no base", []string{"review", "x.deb"}, 3, "--base is required"},
		{"no package", []string{"review", "--base", "b.tar"}, 3, "accepts 1 arg"},
		{"html", []string{"review", "--format", "html", "--base", "b.tar", "x.deb"}, 3, "text or json"},
		{"missing base", []string{"review", "--base", "/nonexistent/base.tar", "x.deb"}, 2, "base image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := diffRun(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d (%s), want %d and %q", code, errOut, tc.code, tc.want)
			}
		})
	}
}
