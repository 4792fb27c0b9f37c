package slots

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/internal/pki"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/pusher/slots/boot"
)

// runAgent runs the ingot agent once with args and env (built with the
// crash hook, which reads INGOT_AGENT_CRASH_AT and INGOT_AGENT_STEPS).
func runAgent(t *testing.T, conf string, env []string, args ...string) (string, error) {
	cmd := exec.Command(ingotCrashBinary(t), append([]string{"agent", "--config", conf}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// manyFiles adds n files to an image so a slot sync has many steps.
func manyFiles(img map[string]string, n int, version string) map[string]string {
	for i := 0; i < n; i++ {
		img[fmt.Sprintf("usr/lib/many/f%03d", i)] = fmt.Sprintf("%s %d\n", version, i)
	}
	return img
}

// A crash (SIGKILL) at every step of a slot sync leaves the booted slot
// and the bootloader untouched, the slot not switchable until a sync
// finishes, and the sync run again finishes it.
func TestSlotSyncCrashAtEveryStep(t *testing.T) {
	testenv.RequireRoot(t)
	f := newFixture(t)
	dA := f.publish(t, manyFiles(imageA(), 40, "a"))
	dB := f.publish(t, manyFiles(imageB(), 40, "b"))
	conf := f.config(t, "")
	if out, err := runAgent(t, conf, nil, "--sync", dA.String()); err != nil {
		t.Fatalf("sync A: %v\n%s", err, out)
	}
	writeTree(t, f.slotA, map[string]string{"etc/hostname": "crashy\n", "etc/app.conf": "x=host\n"})
	sumA := treeSum(t, f.slotA)
	reset := func() {
		os.RemoveAll(f.slotB)
		os.MkdirAll(f.slotB, 0o755)
		os.RemoveAll(f.slotsState)
	}
	reset()
	steps := filepath.Join(f.dir, "steps")
	if out, err := runAgent(t, conf, []string{"INGOT_AGENT_STEPS=" + steps}, "--sync", dB.String(), "--slot"); err != nil {
		t.Fatalf("slot sync: %v\n%s", err, out)
	}
	n, _ := strconv.Atoi(mustRead(t, steps))
	if n < 30 {
		t.Fatalf("a slot sync has only %d steps", n)
	}
	points := 30
	t.Logf("a slot sync has %d steps; crashing at %d of them", n, points)
	for k := 0; k < points; k++ {
		at := 1 + k*(n-1)/(points-1)
		reset()
		out, err := runAgent(t, conf, []string{"INGOT_AGENT_CRASH_AT=" + strconv.Itoa(at)}, "--sync", dB.String(), "--slot")
		if ee, ok := err.(*exec.ExitError); !ok || !strings.Contains(ee.String(), "killed") {
			t.Fatalf("step %d: agent not killed: %v\n%s", at, err, out)
		}
		if got := treeSum(t, f.slotA); got != sumA {
			t.Fatalf("crash at step %d changed the booted slot", at)
		}
		st, err := LoadState(f.slotsState)
		if err != nil {
			t.Fatal(err)
		}
		if st.Trial != nil {
			t.Fatalf("crash at step %d left a trial", at)
		}
		if at < n && st.Slots[boot.B].Image != "" {
			t.Fatalf("crash at step %d of %d: slot b marked ready", at, n)
		}
		if st.Slots[boot.B].Image == "" {
			// Not ready: a switch is refused.
			if out, err := exec.Command(ingotBinary(t), "slot", "switch", "--config", conf).CombinedOutput(); err == nil {
				t.Fatalf("crash at step %d: switched to an unfinished slot\n%s", at, out)
			}
		}
		if k%6 == 0 || k == points-1 {
			if out, err := runAgent(t, conf, nil, "--sync", dB.String(), "--slot"); err != nil {
				t.Fatalf("step %d: slot sync after the crash: %v\n%s", at, err, out)
			}
			st, _ := LoadState(f.slotsState)
			if st.Slots[boot.B].Image != dB.String() {
				t.Fatalf("step %d: slot b not ready after the second sync: %+v", at, st.Slots[boot.B])
			}
			if b, _ := os.ReadFile(filepath.Join(f.slotB, "etc/hostname")); string(b) != "crashy\n" {
				t.Fatalf("step %d: hostname not carried: %q", at, b)
			}
		}
	}
	if d, _ := (&boot.FileBoot{Path: f.bootFile}).Default(); d != boot.A {
		t.Fatal("the bootloader's default moved")
	}
}

// The agent as a process, over its API: push --slot's request (sync the
// inactive slot and switch), a reboot into the slot on trial, the agent
// there commits it; status over /v1/slots/status.
func TestSlotAgentAPI(t *testing.T) {
	testenv.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := newFixture(t)
	dA, dB := f.publish(t, imageA()), f.publish(t, imageB())
	ca := filepath.Join(f.dir, "ca")
	if err := pki.InitCA(ca, "test"); err != nil {
		t.Fatal(err)
	}
	cert, key, err := pki.IssueCert(ca, ca, "host", pki.RoleAgent, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ccert, ckey, err := pki.IssueCert(ca, ca, "ctl", pki.RoleController, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	addrFile := filepath.Join(f.dir, "addr")
	conf := f.config(t, fmt.Sprintf("  health: {deadline: 30s, checks: [{command: [true]}]}\nlisten: 127.0.0.1:0\naddr_file: %s\ntls: {ca: %s/ca.pem, cert: %s, key: %s}\n", addrFile, ca, cert, key))
	if out, err := runAgent(t, conf, nil, "--sync", dA.String()); err != nil {
		t.Fatalf("sync A: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(f.slotA, "etc/hostname"), []byte("apihost\n"), 0o644)
	tlsConf, err := pki.ClientTLS(filepath.Join(ca, "ca.pem"), ccert, ckey)
	if err != nil {
		t.Fatal(err)
	}
	client := agentclient.NewClient(tlsConf)
	start := func() (string, func()) {
		os.Remove(addrFile)
		cmd := exec.Command(ingotBinary(t), "agent", "--config", conf)
		logf, _ := os.Create(filepath.Join(f.dir, "agent.log"))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stop := func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() }
		for i := 0; i < 200; i++ {
			if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
				return string(b), stop
			}
			time.Sleep(50 * time.Millisecond)
		}
		stop()
		t.Fatalf("agent did not start:\n%s", mustRead(t, filepath.Join(f.dir, "agent.log")))
		return "", nil
	}
	addr, stop := start()
	id, err := client.Sync(ctx, addr, api.SyncRequest{Image: dB.String(), Slot: api.SlotInactive, Switch: true})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	res, err := client.Wait(ctx, addr, id, nil)
	if err != nil || !res.OK || !res.Switched || res.Slot != boot.B {
		stop()
		t.Fatalf("slot sync over the API: %+v %v", res, err)
	}
	var st Status
	if err := client.SlotStatus(ctx, addr, &st); err != nil || st.Trial == nil || st.Trial.Slot != boot.B || st.Booted != boot.A {
		stop()
		t.Fatalf("status after the switch: %+v %v", st, err)
	}
	// A slot request to the booted slot by name is refused.
	if _, err := client.Sync(ctx, addr, api.SyncRequest{Image: dB.String(), Slot: boot.A}); err == nil {
		stop()
		t.Fatal("a sync of slot a by name was accepted")
	}
	stop()
	(&boot.FileBoot{Path: f.bootFile}).Boot()
	addr, stop = start()
	defer stop()
	for i := 0; ; i++ {
		st = Status{}
		if err := client.SlotStatus(ctx, addr, &st); err == nil && st.Default == boot.B && st.Trial == nil {
			break
		}
		if i > 300 {
			t.Fatalf("trial of b never committed: %+v\n%s", st, mustRead(t, filepath.Join(f.dir, "agent.log")))
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := json.Marshal(st.LastSwitch)
	t.Logf("switch: %s", b)
	if b, _ := os.ReadFile(filepath.Join(f.slotB, "etc/hostname")); string(b) != "apihost\n" {
		t.Fatalf("hostname on b: %q", b)
	}
}
