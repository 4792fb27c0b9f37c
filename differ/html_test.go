package differ_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/differ"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// TestHTMLInChromium opens the fixture's HTML report in headless Chromium
// and checks that the rendered page shows the summary, the package
// changes and the alerts, and that the page loads nothing from outside.
func TestHTMLInChromium(t *testing.T) {
	chromium := testenv.RequireTool(t, "chromium", "chromium")
	testenv.RequireTool(t, "chromedriver", "chromium-driver")
	a, b := fixtureSources()
	r, err := differ.Diff(context.Background(), a, b, differ.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := r.Write(&page, differ.FormatHTML); err != nil {
		t.Fatal(err)
	}
	// Self-contained: no attribute loads anything (src, href, url(), @import).
	if m := regexp.MustCompile(`(?i)\b(src|href)\s*=|url\(|@import`).Find(page.Bytes()); m != nil {
		t.Errorf("the page refers to an external asset: %q", m)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, page.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--dump-dom", "file://"+file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	summary := regexp.MustCompile(`(?s)<ul id="summary">(.*?)</ul>`).FindSubmatch(dom)
	if summary == nil {
		t.Fatalf("the rendered page has no summary list:\n%s", dom)
	}
	for _, want := range r.SummaryLines() {
		if !strings.Contains(string(summary[1]), "<li>"+want+"</li>") {
			t.Errorf("the rendered summary lacks %q:\n%s", want, summary[1])
		}
	}
	for _, want := range []string{
		`<td><code>libfoo1</code></td><td><code>1.0-1 -&gt; 1.1-1</code></td>`,
		`!! Setuid added`,
		`cap_net_admin,cap_net_raw=ep`,
		`hardlink: now a hardlink of /usr/bin/b (was a hardlink of /usr/bin/a)`,
		`<span class="add">+This host is managed by ingot, image 2026-02.</span>`,
	} {
		if !strings.Contains(string(dom), want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
}
