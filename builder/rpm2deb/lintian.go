package rpm2deb

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Lintian runs lintian on a .deb and returns its tags (errors, warnings,
// info and pedantic). lintian exits non-zero when it finds errors; that is
// a result, not a failure, so only a run that printed nothing and failed
// is an error.
func Lintian(ctx context.Context, deb string) ([]LintianTag, error) {
	cmd := exec.CommandContext(ctx, "lintian", "--allow-root", "--no-tag-display-limit", "--display-info", "--", deb)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var tags []LintianTag
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		line := sc.Text()
		sev, rest, ok := strings.Cut(line, ": ")
		if !ok || len(sev) != 1 || !strings.Contains("EWIPXOC", sev) {
			continue
		}
		// "pkg [binary]: tag info" or "pkg: tag info"
		_, rest, ok = strings.Cut(rest, ": ")
		if !ok {
			continue
		}
		tag, info, _ := strings.Cut(rest, " ")
		tags = append(tags, LintianTag{Severity: sev, Tag: tag, Info: info})
	}
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && len(tags) > 0) {
		return tags, fmt.Errorf("lintian %s: %v: %s", deb, err, strings.TrimSpace(errb.String()))
	}
	return tags, nil
}
