package pusher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ingotfleet/ingot/internal/testenv"
)

// crashTrees are A and B with enough changed files that a sync has
// hundreds of steps: staging, every rename, the journal, the state.
func crashTrees() (tree, tree) {
	a, b := tree{}, treeB()
	for k, v := range treeA {
		a[k] = v
	}
	a["usr/lib/many"] = "dir"
	b["usr/lib/many"] = "dir"
	for i := 0; i < 120; i++ {
		p := fmt.Sprintf("usr/lib/many/f%03d", i)
		switch i % 4 {
		case 0: // changed
			a[p] = fmt.Sprintf("file:old %d", i)
			b[p] = fmt.Sprintf("file:new %d", i)
		case 1: // removed
			a[p] = fmt.Sprintf("file:gone %d", i)
		case 2: // added
			b[p] = fmt.Sprintf("file:added %d|mode=0600", i)
		case 3: // mode only
			a[p] = fmt.Sprintf("file:same %d", i)
			b[p] = fmt.Sprintf("file:same %d|mode=0640", i)
		}
	}
	return a, b
}

func TestCrashAtEveryStep(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "rsync", "rsync")
	bin := ingotCrashBinary(t)
	ctx := context.Background()
	f := newFixture(t)
	ta, tb := crashTrees()
	da, _, srcA := f.publishTree(t, ta)
	db, _, srcB := f.publishTree(t, tb)
	if _, err := f.st.ComputeDeltas(ctx, da, db); err != nil {
		t.Fatal(err)
	}
	work := tmpfsDir(t, "512m")
	template := filepath.Join(work, "template")
	os.MkdirAll(filepath.Join(template, "etc/ssh"), 0o755)
	os.WriteFile(filepath.Join(template, "etc/hostname"), []byte("crashy\n"), 0o644)
	os.WriteFile(filepath.Join(template, "etc/ssh/ssh_host_ed25519_key"), []byte("secret"), 0o600)
	os.MkdirAll(filepath.Join(template, "var/log"), 0o755)
	os.WriteFile(filepath.Join(template, "var/log/syslog"), []byte("host log"), 0o644)

	config := func(root string) string {
		c := agentConfig{Root: root, Stores: []string{f.store}, TrustedKeys: []string{f.writeTrusted(t)}}
		b, _ := yaml.Marshal(c)
		p := filepath.Join(filepath.Dir(root), filepath.Base(root)+".yaml")
		os.WriteFile(p, b, 0o644)
		return p
	}
	agent := func(conf string, env []string, args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"agent", "--config", conf}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := agent(config(template), nil, "--sync", da.String()); err != nil {
		t.Fatalf("sync template to A: %v\n%s", err, out)
	}
	if d := rsyncDiff(t, srcA, template, rsyncExcludes...); d != "" {
		t.Fatalf("template not at A:\n%s", d)
	}
	copyRoot := func(dst string) {
		if out, err := exec.Command("cp", "-a", template, dst).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
	}

	// Count the steps of a whole sync A → B.
	counted := filepath.Join(work, "counted")
	copyRoot(counted)
	stepsFile := filepath.Join(work, "steps")
	if out, err := agent(config(counted), []string{"INGOT_AGENT_STEPS=" + stepsFile}, "--sync", db.String()); err != nil {
		t.Fatalf("sync A → B: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(stepsFile)
	steps, _ := strconv.Atoi(string(b))
	if steps < 200 {
		t.Fatalf("a sync has only %d steps; the test wants 200 distinct crash points", steps)
	}
	t.Logf("a sync A → B has %d steps", steps)

	quickRel := "var/lib/ingot-agent/quick.json"
	templateQuick, _ := os.ReadFile(filepath.Join(template, quickRel))
	atA, atB, recorded := 0, 0, 0
	for k := 0; k < 200; k++ {
		at := 1 + k*(steps-1)/199 // spread over the whole sync, first and last step included
		root := filepath.Join(work, fmt.Sprintf("r%03d", k))
		copyRoot(root)
		conf := config(root)
		// Image B's after-phase triggers append to work/triggers.log.
		fired := func() int {
			b, _ := os.ReadFile(filepath.Join(work, "triggers.log"))
			return strings.Count(string(b), "\n")
		}
		before := fired()
		out, err := agent(conf, []string{"INGOT_AGENT_CRASH_AT=" + strconv.Itoa(at)}, "--sync", db.String())
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("step %d: agent was not killed: %v\n%s", at, err, out)
		}
		if out, err := agent(conf, nil, "--recover"); err != nil {
			t.Fatalf("step %d: recovery: %v\n%s", at, err, out)
		}
		dB := rsyncDiff(t, srcB, root, rsyncExcludes...)
		dA := ""
		if dB != "" {
			dA = rsyncDiff(t, srcA, root, rsyncExcludes...)
		}
		switch {
		case dB == "":
			atB++
			if fired() == before {
				t.Fatalf("crash at step %d: the root is at B but its triggers never ran", at)
			}
		case dA == "":
			atA++
			if fired() != before {
				t.Fatalf("crash at step %d: the root is at A but B's triggers ran", at)
			}
		default:
			t.Fatalf("crash at step %d of %d left a mix of A and B:\nvs A:\n%s\nvs B:\n%s", at, steps, dA, dB)
		}
		// A quick-check record left by the crash is whole, and a new
		// one only at B: it is written after the commit is done. (The
		// template's record, copied with it, names another root.)
		if qb, err := os.ReadFile(filepath.Join(root, quickRel)); err == nil && !bytes.Equal(qb, templateQuick) {
			var rec quickRecord
			if err := json.Unmarshal(qb, &rec); err != nil || dB != "" {
				t.Fatalf("crash at step %d: a new quick.json (%v) with the root not at B:\n%s", at, err, dB)
			}
			recorded++
		}
		for p, want := range map[string]string{"etc/hostname": "crashy\n", "etc/ssh/ssh_host_ed25519_key": "secret", "var/log/syslog": "host log"} {
			if got, _ := os.ReadFile(filepath.Join(root, p)); string(got) != want {
				t.Fatalf("crash at step %d: local path %s = %q", at, p, got)
			}
		}
		// Every tenth time, the sync is run again and must finish at B
		// (resuming what was staged).
		if k%10 == 0 {
			if out, err := agent(conf, nil, "--sync", db.String()); err != nil {
				t.Fatalf("step %d: sync after the crash: %v\n%s", at, err, out)
			}
			if d := rsyncDiff(t, srcB, root, rsyncExcludes...); d != "" {
				t.Fatalf("step %d: sync after the crash did not reach B:\n%s", at, d)
			}
		}
		os.RemoveAll(root)
	}
	t.Logf("after 200 crashes: %d roots at A, %d at B, %d with a quick-check record", atA, atB, recorded)
	if atA == 0 || atB == 0 {
		t.Errorf("crash points did not cover both sides of the commit (A %d, B %d)", atA, atB)
	}
}

// The shipped binary has no crash hook: the variables the crash tests
// set do not reach it (cmd/ingot/crashhook.go is built only with -tags
// ingotcrash).
func TestCrashHookNotShipped(t *testing.T) {
	testenv.RequireRoot(t)
	bin := ingotBinary(t)
	f := newFixture(t)
	da, _, _ := f.publishTree(t, treeA)
	work := t.TempDir()
	root := filepath.Join(work, "root")
	os.MkdirAll(root, 0o755)
	b, _ := yaml.Marshal(agentConfig{Root: root, Stores: []string{f.store}, TrustedKeys: []string{f.writeTrusted(t)}})
	conf := filepath.Join(work, "agent.yaml")
	os.WriteFile(conf, b, 0o644)
	steps := filepath.Join(work, "steps")
	cmd := exec.Command(bin, "agent", "--config", conf, "--sync", da.String())
	cmd.Env = append(os.Environ(), "INGOT_AGENT_CRASH_AT=1", "INGOT_AGENT_STEPS="+steps)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the shipped agent did not finish its sync with INGOT_AGENT_CRASH_AT=1: %v\n%s", err, out)
	}
	if _, err := os.Stat(steps); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the shipped agent wrote INGOT_AGENT_STEPS's file (%v)", err)
	}
}
