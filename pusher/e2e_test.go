package pusher_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/glob"
	"github.com/ingotfleet/ingot/internal/localfleet"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher"
	"github.com/ingotfleet/ingot/pusher/agent"
	"github.com/ingotfleet/ingot/pusher/plan"
	"github.com/ingotfleet/ingot/triggers"
)

// e2eRules are the agents' trigger rules: each appends its name to
// ROOT/../triggers.log, so the test counts how often each fired.
func e2eRules(t testing.TB) []triggers.Rule {
	spec := map[string][]string{
		"ldconfig":   {"usr/lib/**/*.so*", "lib/**/*.so*"},
		"sshd":       {"etc/ssh/**", "usr/sbin/sshd"},
		"bootloader": {"boot/**"},
		"python":     {"usr/lib/python3*/**"},
		"perl":       {"usr/share/perl/**", "usr/lib/x86_64-linux-gnu/perl/**"},
		"ca-certs":   {"usr/share/ca-certificates/**"},
		"units":      {"lib/systemd/system/**", "usr/lib/systemd/system/**"},
	}
	var rules []triggers.Rule
	for name, paths := range spec {
		r := triggers.Rule{Name: name, Paths: paths, Timeout: time.Minute,
			Command: []string{"sh", "-c", "echo " + name + " >> \"$INGOT_ROOT/../triggers.log\""}}
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	return rules
}

// expectedTriggers lists the rules that must fire for a sync from one
// manifest (nil: an empty root) to another.
func expectedTriggers(rules []triggers.Rule, from, to *images.Manifest, s *pusher.Syncer) []string {
	var host []pusher.Node
	if from != nil {
		for _, e := range from.Entries {
			host = append(host, pusher.Node{Entry: e})
		}
	} else {
		host = []pusher.Node{{Entry: images.Entry{Path: ".", Type: images.TypeDir}}}
	}
	changed := plan.Make(host, to, plan.Options{Local: s.IsLocal, Keep: s.HoldsState}).Changed
	var names []string
	for _, m := range triggers.Select(rules, triggers.PhaseAfter, changed) {
		names = append(names, m.Rule.Name)
	}
	slices.Sort(names)
	return names
}

func firedTriggers(t testing.TB, root string) []string {
	log := filepath.Join(root, "..", "triggers.log")
	b, _ := os.ReadFile(log)
	os.Remove(log)
	names := strings.Fields(string(b))
	slices.Sort(names)
	return names
}

func TestEndToEnd20Agents(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "rsync", "rsync")
	if testenv.Short() {
		t.Fatal("the end-to-end test is left out only by -run; -short does not skip it")
	}
	pair := pusher.LoadDebianPair(t)
	bin := pusher.IngotBinary(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv := httptest.NewServer(http.FileServer(http.Dir(pair.StoreDir())))
	defer srv.Close()
	rules := e2eRules(t)
	// The roots live on a tmpfs: 20 × 250 MB written and removed in
	// seconds, not minutes, on a busy disk (the agents' own work is the same).
	work := pusher.TmpfsDir(t, "7g")
	const n = 20
	fleet, err := localfleet.Start(ctx, localfleet.Options{
		N: n, Dir: work, Binary: bin, Stores: []string{srv.URL}, TrustedKeys: []string{pair.KeyFile()},
		Triggers: rules,
		Extra: func(i int, c *agent.Config) {
			c.ExtraLocalPaths = []string{"opt/data/**"}
			c.Limits.Concurrency = 4
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Stop()

	// Each host's own files: local paths, an excluded data directory, and
	// a separate filesystem mounted at mnt/data.
	locals := map[string]string{
		"etc/hostname": "", "etc/machine-id": "0123456789abcdef\n", "etc/ssh/ssh_host_ed25519_key": "host key\n",
		"var/log/host.log": "host log\n", "home/alice/notes": "mine\n", "opt/data/db": "excluded data\n",
	}
	for _, a := range fleet.Agents {
		for p, content := range locals {
			if p == "etc/hostname" {
				content = a.Name + "\n"
			}
			os.MkdirAll(filepath.Join(a.Root, filepath.Dir(p)), 0o755)
			if err := os.WriteFile(filepath.Join(a.Root, p), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		mnt := filepath.Join(a.Root, "mnt/data")
		os.MkdirAll(mnt, 0o755)
		if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=4m"); err != nil {
			t.Fatal(err)
		}
		defer unix.Unmount(mnt, unix.MNT_DETACH)
		os.WriteFile(filepath.Join(mnt, "partition"), []byte("data partition\n"), 0o644)
	}
	checkLocals := func(stage string) {
		t.Helper()
		for _, a := range fleet.Agents {
			for p, content := range locals {
				if p == "etc/hostname" {
					content = a.Name + "\n"
				}
				if b, err := os.ReadFile(filepath.Join(a.Root, p)); err != nil || string(b) != content {
					t.Fatalf("%s, %s: local path %s = %q, %v", stage, a.Name, p, b, err)
				}
			}
			if b, err := os.ReadFile(filepath.Join(a.Root, "mnt/data/partition")); err != nil || string(b) != "data partition\n" {
				t.Fatalf("%s, %s: mounted data partition: %q %v", stage, a.Name, b, err)
			}
		}
	}
	excludes := append(slices.Clone(pusher.RsyncExcludes), "/opt/data", "/mnt/data")
	verify := func(stage, src string) {
		t.Helper()
		for i, a := range fleet.Agents {
			// Size, mtime, owner, mode, xattrs, hardlinks on every host;
			// every byte (rsync -c) on two of them.
			if i < 2 {
				if d := pusher.RsyncDiff(t, src, a.Root, excludes...); d != "" {
					t.Fatalf("%s: %s differs from the image:\n%s", stage, a.Name, d)
				}
				continue
			}
			if d := rsyncQuickDiff(t, src, a.Root, excludes...); d != "" {
				t.Fatalf("%s: %s differs from the image:\n%s", stage, a.Name, d)
			}
		}
	}
	ma := pair.Manifest(t, pair.A())
	mb := pair.Manifest(t, pair.B())
	probe := &pusher.Syncer{Root: "/r", StateDir: "/r/var/lib/ingot-agent"}
	probe.Local, _ = glob.CompileSet(append(slices.Clone(pusher.DefaultLocal), "opt/data/**"))

	start := time.Now()
	if _, err := fleet.Push(ctx, agentclient.PushOptions{Image: pair.A(), Concurrency: 5}); err != nil {
		t.Fatal(err)
	}
	t.Logf("push A onto %d empty roots: %s", n, time.Since(start).Round(time.Millisecond))
	verify("after A", pair.DirA())
	checkLocals("after A")
	wantA := expectedTriggers(rules, nil, ma, probe)
	for _, a := range fleet.Agents {
		if got := firedTriggers(t, a.Root); !slices.Equal(got, wantA) {
			t.Fatalf("push A, %s: triggers fired %v, want each of %v once", a.Name, got, wantA)
		}
	}

	start = time.Now()
	reports, err := fleet.Push(ctx, agentclient.PushOptions{Image: pair.B(), Concurrency: 5})
	if err != nil {
		t.Fatal(err)
	}
	var fetched, deltas int64
	for _, r := range reports {
		fetched += r.Result.Fetched
		deltas += r.Result.Deltas
	}
	t.Logf("push B onto %d hosts at A: %s, %.1f MB fetched per host, %d files from deltas per host",
		n, time.Since(start).Round(time.Millisecond), float64(fetched)/n/1e6, deltas/n)
	verify("after B", pair.DirB())
	// And as an operator would check it: `ingot image verify B --root`,
	// leaving out the host's local paths and other filesystems (the test
	// images are imported with numeric owners only).
	for _, a := range fleet.Agents {
		args := []string{"--store", pair.StoreDir(), "image", "verify", pair.B().String(), "--root", a.Root, "--one-file-system"}
		for _, g := range append(slices.Clone(pusher.DefaultLocal), "opt/data/**", "mnt/data") {
			args = append(args, "--exclude", g)
		}
		if out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("after B: ingot image verify B --root %s: %v\n%s", a.Root, err, out)
		}
	}
	checkLocals("after B")
	wantB := expectedTriggers(rules, ma, mb, probe)
	if len(wantB) == 0 || len(wantB) == len(rules) {
		t.Fatalf("the upgrade should fire some triggers and not others; expected %v", wantB)
	}
	for _, a := range fleet.Agents {
		if got := firedTriggers(t, a.Root); !slices.Equal(got, wantB) {
			t.Fatalf("push B, %s: triggers fired %v, want each of %v once", a.Name, got, wantB)
		}
	}
	t.Logf("triggers fired on A: %v; on the upgrade to B: %v", wantA, wantB)
	_ = fmt.Sprint
}

// rsyncQuickDiff is rsyncDiff without -c: sizes and mtimes stand in for
// content.
func rsyncQuickDiff(t testing.TB, src, dst string, excludes ...string) string {
	t.Helper()
	args := []string{"-n", "-a", "-H", "-X", "--delete", "--itemize-changes", "--numeric-ids"}
	for _, e := range excludes {
		args = append(args, "--exclude", e)
	}
	return pusher.RunRsyncDiff(t, append(args, src+"/", dst+"/"))
}
