package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/internal/cli"
	"github.com/ingotfleet/ingot/internal/localfleet"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// The pusher's commands end to end, in-process: keys, CA, image import, sign,
// delta, push (table and --json), a failing push, rollback.
func TestPushCommands(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	env := map[string]string{"INGOT_STORE": store}
	run := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := runApp(t, env, args...)
		if code != want {
			t.Fatalf("ingot %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, out, errOut)
		}
		return out
	}
	run(cli.ExitOK, "key", "gen", filepath.Join(dir, "release"))
	run(cli.ExitError, "key", "gen", filepath.Join(dir, "release")) // never overwrites

	trees := map[string]map[string]string{
		"a": {"etc/motd": "hello A\n", "usr/bin/tool": "v1\n", "usr/lib/libx.so.1": "lib v1\n"},
		"b": {"etc/motd": "hello B\n", "usr/bin/tool": "v1\n", "usr/lib/libx.so.1": "lib v2\n",
			"etc/ingot/triggers.d/t.yaml": "triggers:\n  - name: ldconfig\n    paths: [\"usr/lib/**\"]\n    command: [\"true\"]\n  - name: motd\n    paths: [\"etc/motd\"]\n    command: [\"true\"]\n  - name: never\n    paths: [\"boot/**\"]\n    command: [\"false\"]\n"},
	}
	digests := map[string]string{}
	for name, files := range trees {
		root := filepath.Join(dir, name)
		for p, c := range files {
			os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
			os.WriteFile(filepath.Join(root, p), []byte(c), 0o644)
		}
		digests[name] = strings.TrimSpace(run(cli.ExitOK, "image", "import", root, "--name", "demo:"+name))
		run(cli.ExitOK, "image", "sign", "demo:"+name, "--key", filepath.Join(dir, "release.key"))
	}
	if out := run(cli.ExitOK, "image", "delta", "demo:a", "demo:b"); !strings.Contains(out, "deltas") {
		t.Errorf("delta: %s", out)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv := httptest.NewServer(http.FileServer(http.Dir(store)))
	defer srv.Close()
	fleet, err := localfleet.Start(ctx, localfleet.Options{N: 3, Dir: filepath.Join(dir, "fleet"),
		Stores: []string{srv.URL}, TrustedKeys: []string{filepath.Join(dir, "release.pub")}})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Stop()
	var hosts strings.Builder
	for _, h := range fleet.Hosts {
		fmt.Fprintf(&hosts, "%s %s\n", h.Name, h.Addr)
	}
	hostsFile := filepath.Join(dir, "hosts.txt")
	os.WriteFile(hostsFile, []byte(hosts.String()), 0o644)
	tls := []string{"--hosts", hostsFile, "--ca", filepath.Join(fleet.CA, "ca.pem"),
		"--cert", filepath.Join(fleet.CA, "controller.pem"), "--key", filepath.Join(fleet.CA, "controller-key.pem")}

	out := run(cli.ExitOK, append([]string{"push", "demo:a", "--concurrency", "2"}, tls...)...)
	if !strings.Contains(out, "3 of 3 hosts ok") || !strings.Contains(out, "HOST") {
		t.Errorf("push A summary:\n%s", out)
	}
	out = run(cli.ExitOK, append([]string{"push", digests["b"][:12], "--json", "--canary", "1"}, tls...)...)
	var rep struct {
		Image string
		Hosts []agentclient.HostReport
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("push --json: %v\n%s", err, out)
	}
	if rep.Image != digests["b"] || len(rep.Hosts) != 3 {
		t.Fatalf("push --json: %+v", rep)
	}
	for _, h := range rep.Hosts {
		var fired []string
		for _, tr := range h.Result.Triggers {
			fired = append(fired, tr.Name)
		}
		if h.State != agentclient.HostOK || strings.Join(fired, ",") != "ldconfig,motd" {
			t.Errorf("%s: %s, triggers %v", h.Host.Name, h.State, fired)
		}
	}
	for _, a := range fleet.Agents {
		if b, _ := os.ReadFile(filepath.Join(a.Root, "etc/motd")); string(b) != "hello B\n" {
			t.Errorf("%s: motd %q", a.Name, b)
		}
	}
	// An image the store lacks: every host fails, exit 1, and the push
	// stops starting hosts once failures pass --max-failures.
	out = run(cli.ExitNegative, append([]string{"push", strings.Repeat("ab", 32), "--concurrency", "1", "--max-failures", "1"}, tls...)...)
	if !strings.Contains(out, "failed") || !strings.Contains(out, "skipped") {
		t.Errorf("failing push:\n%s", out)
	}
	run(cli.ExitOK, append([]string{"rollback"}, tls...)...)
	for _, a := range fleet.Agents {
		if b, _ := os.ReadFile(filepath.Join(a.Root, "etc/motd")); string(b) != "hello A\n" {
			t.Errorf("%s after rollback: motd %q", a.Name, b)
		}
	}
	// Both images published as demo:prod, B the later: a push of A is
	// refused as older (the hosts run A now, after the rollback: B first),
	// unless --allow-rollback says so.
	run(cli.ExitOK, "image", "sign", "demo:a", "--as", "demo:prod", "--generation", "1", "--key", filepath.Join(dir, "release.key"))
	run(cli.ExitOK, "image", "sign", "demo:b", "--as", "demo:prod", "--generation", "2", "--key", filepath.Join(dir, "release.key"))
	run(cli.ExitUsage, "image", "sign", digests["a"], "--key", filepath.Join(dir, "release.key")) // a digest needs --as
	run(cli.ExitOK, append([]string{"push", digests["b"]}, tls...)...)
	if out := run(cli.ExitNegative, append([]string{"push", digests["a"]}, tls...)...); !strings.Contains(out, "older") || !strings.Contains(out, "demo:prod generation 1") {
		t.Errorf("push of the older image:\n%s", out)
	}
	run(cli.ExitOK, append([]string{"push", digests["a"], "--allow-rollback"}, tls...)...)
	for _, a := range fleet.Agents {
		if b, _ := os.ReadFile(filepath.Join(a.Root, "etc/motd")); string(b) != "hello A\n" {
			t.Errorf("%s after push --allow-rollback: motd %q", a.Name, b)
		}
	}
	run(cli.ExitUsage, "push", "demo:a")                                                   // no --hosts
	run(cli.ExitUsage, append([]string{"push", "demo:a", "--bwlimit", "fast"}, tls...)...) // bad rate
}
