package rollout_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/pki"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/pusher/slots/boot"
	"github.com/ingotfleet/ingot/rollout"
	"github.com/ingotfleet/ingot/rollout/rollouttest"
)

// slotHost is a host with two directory slots whose agent runs as a
// process; its "reboot" (the agent's configured reboot command) ends the
// agent, and the host's supervisor then plays firmware and bootloader
// (FileBoot.Boot) and starts the agent again on the same port.
type slotHost struct {
	name, dir, conf, addr string
	slotA, slotB          string
	boot                  *boot.FileBoot
	unhealthy             string // while this file exists, the trial's health check fails

	mu      sync.Mutex
	cmd     *exec.Cmd
	stopped bool
	boots   int
	done    chan struct{}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newSlotHost(t *testing.T, name, ca string, ss *signedStore, healthDeadline time.Duration) *slotHost {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	h := &slotHost{name: name, dir: dir, addr: freePort(t), slotA: filepath.Join(dir, "slots/a"), slotB: filepath.Join(dir, "slots/b"),
		boot: &boot.FileBoot{Path: filepath.Join(dir, "data/boot.json")}, unhealthy: filepath.Join(dir, "unhealthy")}
	for _, d := range []string{h.slotA, h.slotB, filepath.Join(dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cert, key, err := pki.IssueCert(ca, dir, "agent", pki.RoleAgent, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	h.conf = filepath.Join(dir, "agent.yaml")
	conf := fmt.Sprintf(`name: %s
root: %s
listen: %s
stores: [%s]
trusted_keys: [%s]
tls: {ca: %s/ca.pem, cert: %s, key: %s}
slots:
  a: {dir: %s}
  b: {dir: %s}
  state_dir: %s/data/ingot-slots
  keep: [/srv]
  boot: {type: file, file: %s}
  reboot: [sh, -c, 'kill $PPID']
  etc_default: keep-host
  health: {deadline: %v, checks: [{command: [sh, -c, '! test -e %s']}]}
`, name, h.slotA, h.addr, ss.url, ss.pub, ca, cert, key, h.slotA, h.slotB, dir, h.boot.Path, healthDeadline, h.unhealthy)
	if err := os.WriteFile(h.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// run starts the agent and supervises it until stop: whenever the agent
// exits by itself, the host reboots.
func (h *slotHost) run(t *testing.T, bin string) {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(h.dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "agent", "--config", h.conf)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Error(err)
			return nil
		}
		return cmd
	}
	h.cmd = start()
	h.done = make(chan struct{})
	go func() {
		defer close(h.done)
		defer logf.Close()
		for {
			h.mu.Lock()
			cmd := h.cmd
			h.mu.Unlock()
			if cmd == nil {
				return
			}
			cmd.Wait()
			h.mu.Lock()
			if h.stopped {
				h.mu.Unlock()
				return
			}
			if _, err := h.boot.Boot(); err != nil {
				t.Errorf("%s: boot: %v", h.name, err)
			}
			h.boots++
			fmt.Fprintf(logf, "--- reboot %d ---\n", h.boots)
			h.cmd = start()
			h.mu.Unlock()
		}
	}()
}

func (h *slotHost) stop() {
	h.mu.Lock()
	h.stopped = true
	if h.cmd != nil && h.cmd.Process != nil {
		h.cmd.Process.Signal(os.Interrupt)
	}
	h.mu.Unlock()
	if h.done != nil {
		<-h.done
	}
}

func (h *slotHost) log(t *testing.T) string {
	b, _ := os.ReadFile(filepath.Join(h.dir, "agent.log"))
	return string(b)
}

func slotStatus(ctx context.Context, c *agentclient.Client, h *slotHost) (api.Status, error) {
	return c.Status(ctx, h.addr)
}

// slotFleet is hosts with A/B directory slots at image A, a signed store
// with A and B, a CA and a controller's client.
type slotFleet struct {
	bin, ca, ccert, ckey string
	imgA, imgB           images.Digest
	client               *agentclient.Client
	hosts                []*slotHost
	inv                  string // a rollout inventory: the first host alone in colo c0, all in set s1
}

func newSlotFleet(t *testing.T, names []string, healthDeadline time.Duration) *slotFleet {
	t.Helper()
	f := &slotFleet{bin: testenv.IngotBinary(t)}
	ss := newSignedStore(t)
	f.imgA = ss.publish(t, map[string]string{"etc/os-release": "A\n", "etc/app.conf": "x=1\n", "usr/bin/tool": "tool a\n"})
	f.imgB = ss.publish(t, map[string]string{"etc/os-release": "B\n", "etc/app.conf": "x=1\n", "usr/bin/tool": "tool b\n", "usr/share/new": "new\n"})
	f.ca = filepath.Join(t.TempDir(), "ca")
	if err := pki.InitCA(f.ca, "test"); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.ccert, f.ckey, err = pki.IssueCert(f.ca, f.ca, "ctl", pki.RoleController, nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	tlsConf, err := pki.ClientTLS(filepath.Join(f.ca, "ca.pem"), f.ccert, f.ckey)
	if err != nil {
		t.Fatal(err)
	}
	f.client = agentclient.NewClient(tlsConf)
	var inv strings.Builder
	inv.WriteString("hosts:\n")
	for i, name := range names {
		h := newSlotHost(t, name, f.ca, ss, healthDeadline)
		if out, err := exec.Command(f.bin, "agent", "--config", h.conf, "--sync", f.imgA.String()).CombinedOutput(); err != nil {
			t.Fatalf("%s: sync A: %v\n%s", name, err, out)
		}
		os.WriteFile(filepath.Join(h.slotA, "etc/hostname"), []byte(name+"\n"), 0o644)
		colo := "c1"
		if i == 0 {
			colo = "c0"
		}
		fmt.Fprintf(&inv, "  - {name: %s, addr: %q, colo: %s, sets: [s1]}\n", name, h.addr, colo)
		f.hosts = append(f.hosts, h)
	}
	f.inv = inv.String()
	return f
}

// start starts every host's agent (stopped at the test's end) and waits
// until they answer, booted on slot a.
func (f *slotFleet) start(t *testing.T) {
	t.Helper()
	for _, h := range f.hosts {
		h.run(t, f.bin)
		t.Cleanup(h.stop)
	}
	waitSettled(t, f.client, f.hosts, boot.A, f.imgA.String())
}

// waitSettled waits until every host's agent answers with no slot work
// under way: booted on slot want, committed there, at image.
func waitSettled(t *testing.T, c *agentclient.Client, hosts []*slotHost, want, image string) {
	t.Helper()
	ctx := context.Background()
	for _, h := range hosts {
		for i := 0; ; i++ {
			s, err := slotStatus(ctx, c, h)
			if err == nil && s.Slots != nil && s.Slots.Trial == nil && s.Slots.Booted == want && s.Slots.Default == want && s.Image == image {
				break
			}
			if i > 600 {
				t.Fatalf("%s never settled on slot %s at %s: %+v %v\n%s", h.name, want, image, s.Slots, err, h.log(t))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestSlotRollout rolls an image out slot by slot over three real agents
// with directory slots (policy mode: slot): each agent writes its
// inactive slot, switches, "reboots" and commits the trial boot; a host
// counts against its set's budget (1) until its trial committed, so the
// hosts move one at a time. The third host's trial fails its health
// check: the host comes back on its old slot by itself, the controller
// marks it failed and freezes its set; healed and retried, it moves.
// The second host's trial commits but the rollout's own health gate
// fails: it is switched back to the slot it left.
// Then `ingot rollback --slot --hosts` takes the whole fleet back to its
// first slot and `ingot push --slot` forward again, each host waited for
// until its trial boot committed.
func TestSlotRollout(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newSlotFleet(t, []string{"h1", "h2", "h3"}, 3*time.Second)
	bin, ca, ccert, ckey, client, hosts, imgA, imgB := f.bin, f.ca, f.ccert, f.ckey, f.client, f.hosts, f.imgA, f.imgB
	os.WriteFile(hosts[2].unhealthy, nil, 0o644)
	f.start(t)
	// h2's rollout health gate fails (after its trial committed) until
	// the test says otherwise.
	var h2Healthy atomic.Bool
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/h2") && !h2Healthy.Load() {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
		}
	}))
	defer gate.Close()
	pl, bs := beginRollout(ctx, t, f.inv, fmt.Sprintf(`
mode: slot
slot_deadline: 2m
interval: 100ms
canary: {colos: [c0]}
max_unavailable: 1
failures: {limit: 2, rollback: true}
health: {deadline: 2s, gates: [{http: "%s/health/{host}"}]}
`, gate.URL), imgB.String())
	audit := &rollouttest.Log{}
	ctl := &rollout.Controller{Plan: pl, Store: bs, Agents: &rollout.PusherAgents{Client: client}, Audit: audit, Poll: 50 * time.Millisecond,
		Health: rollout.Gates(pl.Pol, nil)}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ctl.Run(rctx) }()
	waitAudit := func(what string, h *slotHost) {
		t.Helper()
		for i := 0; !strings.Contains(audit.String(), what); i++ {
			if i > 2400 {
				t.Fatalf("no %s in the audit log:\n%s\n%s", what, audit.String(), h.log(t))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// h2's trial commits, then the rollout's gate fails: h2 is failed and
	// switched back to the slot it left.
	waitAudit(`"action":"rolledback","host":"h2"`, hosts[1])
	evs := mustEvents(t, audit)
	rb, _ := first(evs, func(e rollout.Event) bool { return e.Action == rollout.RolledBack && e.Host == "h2" })
	if rb.Reason != "rolled back to slot a at "+imgA.String() {
		t.Errorf("h2's rollback: %q", rb.Reason)
	}
	waitSettled(t, client, hosts[1:2], boot.A, imgA.String())
	if st := ctl.Snapshot(); st.Frozen["s1"] != "h2" || (st.Hosts["h3"].Phase != "" && st.Hosts["h3"].Phase != rollout.Pending) {
		t.Errorf("after h2's failure: frozen %v, h3 %+v", st.Frozen, st.Hosts["h3"])
	}
	h2Healthy.Store(true)
	if err := ctl.Command(ctx, "retry", "h2"); err != nil {
		t.Fatal(err)
	}

	// h3's trial fails its check: back on slot a by itself, failed, s1 frozen.
	waitAudit(`"action":"rolledback","host":"h3"`, hosts[2])
	evs = mustEvents(t, audit)
	fail, _ := first(evs, func(e rollout.Event) bool { return e.Action == rollout.Fail && e.Host == "h3" })
	if !strings.Contains(fail.Reason, "the switch to slot b failed") || !strings.Contains(fail.Reason, "health checks failed") {
		t.Errorf("h3's failure: %q", fail.Reason)
	}
	rb, _ = first(evs, func(e rollout.Event) bool { return e.Action == rollout.RolledBack && e.Host == "h3" })
	if !strings.Contains(rb.Reason, "nothing to roll back") {
		t.Errorf("h3's rollback: %q (the host came back on its old slot by itself)", rb.Reason)
	}
	waitSettled(t, client, hosts[2:], boot.A, imgA.String())
	s3, _ := slotStatus(ctx, client, hosts[2])
	if s3.Slots.Failed == nil || s3.Slots.Failed.Slot != boot.B || s3.Slots.Committed != nil {
		t.Errorf("h3's slots after its failed trial: %+v", s3.Slots)
	}
	if st := ctl.Snapshot(); st.Frozen["s1"] != "h3" || st.Hosts["h3"].Phase != rollout.Failed {
		t.Errorf("after h3's failure: frozen %v, h3 %+v", st.Frozen, st.Hosts["h3"])
	}
	// Healed and retried, h3 moves too.
	os.Remove(hosts[2].unhealthy)
	if err := ctl.Command(ctx, "retry", "h3"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("controller: %v", err)
	}
	waitSettled(t, client, hosts, boot.B, imgB.String())
	for _, h := range hosts {
		if b, err := os.ReadFile(filepath.Join(h.slotB, "etc/hostname")); err != nil || string(b) != h.name+"\n" {
			t.Errorf("%s: hostname on slot b %q %v", h.name, b, err)
		}
		if b, _ := os.ReadFile(filepath.Join(h.slotA, "usr/bin/tool")); string(b) != "tool a\n" {
			t.Errorf("%s: slot a changed: tool = %q", h.name, b)
		}
	}
	evs = mustEvents(t, audit)
	checkBudgets(t, pl, evs, func(string, int) bool { return false })
	// One host at a time: each started after the one before finished
	// (committed its trial and passed its gates) or failed.
	for _, pair := range [][2]string{{"h1", "h2"}, {"h2", "h3"}} {
		fin, _ := first(evs, func(e rollout.Event) bool {
			return (e.Action == rollout.Finish || e.Action == rollout.Fail) && e.Host == pair[0]
		})
		st, _ := first(evs, func(e rollout.Event) bool { return e.Action == rollout.Start && e.Host == pair[1] })
		if fin.Time.IsZero() || st.Time.Before(fin.Time) {
			t.Errorf("%s started at %v, before %s finished at %v", pair[1], st.Time, pair[0], fin.Time)
		}
	}
	syn, _ := first(evs, func(e rollout.Event) bool { return e.Action == rollout.Synced && e.Host == "h1" })
	if !strings.Contains(syn.Reason, "slot b committed after") {
		t.Errorf("h1 synced: %q", syn.Reason)
	}

	// The fleet back to slot a with one command, and forward again.
	hostsFile := filepath.Join(t.TempDir(), "hosts.txt")
	var hf strings.Builder
	for _, h := range hosts {
		fmt.Fprintf(&hf, "%s %s\n", h.name, h.addr)
	}
	os.WriteFile(hostsFile, []byte(hf.String()), 0o644)
	tlsArgs := []string{"--hosts", hostsFile, "--ca", filepath.Join(ca, "ca.pem"), "--cert", ccert, "--key", ckey}
	out, err := exec.Command(bin, append([]string{"rollback", "--slot", "--slot-deadline", "2m"}, tlsArgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ingot rollback --slot --hosts: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "3 of 3 hosts ok") {
		t.Errorf("rollback output:\n%s", out)
	}
	// push answered only once every trial committed: settled at once.
	for _, h := range hosts {
		s, err := slotStatus(ctx, client, h)
		if err != nil || s.Slots.Booted != boot.A || s.Slots.Default != boot.A || s.Slots.Trial != nil || s.Image != imgA.String() {
			t.Fatalf("%s after the fleet rollback: %+v %v", h.name, s.Slots, err)
		}
	}
	// A host that fails its trial fails the push; the others go on.
	os.WriteFile(hosts[1].unhealthy, nil, 0o644)
	out, err = exec.Command(bin, append([]string{"push", imgB.String(), "--slot", "--slot-deadline", "2m"}, tlsArgs...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "2 of 3 hosts ok") || !strings.Contains(string(out), "health checks failed") {
		t.Fatalf("push --slot with h2 unhealthy: %v\n%s", err, out)
	}
	waitSettled(t, client, []*slotHost{hosts[0], hosts[2]}, boot.B, imgB.String())
	waitSettled(t, client, hosts[1:2], boot.A, imgA.String())
}

// A controller stopped while its host reboots into the new slot, and a
// new one started on the same state: it follows the same switch to its
// commit and sends nothing again (the agent counts one switch).
func TestSlotRolloutControllerRestart(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newSlotFleet(t, []string{"h1"}, 30*time.Second)
	h := f.hosts[0]
	os.WriteFile(h.unhealthy, nil, 0o644) // the trial waits on its check
	f.start(t)
	pl, bs := beginRollout(ctx, t, f.inv, "mode: slot\ninterval: 100ms\nslot_deadline: 2m\n", f.imgB.String())
	audit := &rollouttest.Log{}
	newCtl := func() *rollout.Controller {
		return &rollout.Controller{Plan: pl, Store: bs, Agents: &rollout.PusherAgents{Client: f.client}, Audit: audit, Poll: 50 * time.Millisecond}
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- newCtl().Run(rctx) }()
	// The host rebooted into b and runs its trial: stop the controller.
	for i := 0; ; i++ {
		s, err := f.client.Status(ctx, h.addr)
		if err == nil && s.Slots != nil && s.Slots.Booted == boot.B && s.Slots.Trial != nil {
			break
		}
		if i > 1200 {
			t.Fatalf("h1 never reached its trial on b: %+v %v\n%s", s.Slots, err, h.log(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("first controller: %v", err)
	}
	os.Remove(h.unhealthy)
	rctx, cancel = context.WithCancel(ctx)
	defer cancel()
	go func() { done <- newCtl().Run(rctx) }()
	for err := error(nil); ; {
		select {
		case err = <-done:
		case <-time.After(50 * time.Millisecond):
			if strings.Contains(audit.String(), `"action":"fail"`) {
				t.Fatalf("the host failed after the restart:\n%s\n%s", audit.String(), h.log(t))
			}
			continue
		}
		if err != nil {
			t.Fatalf("second controller: %v", err)
		}
		break
	}
	waitSettled(t, f.client, f.hosts, boot.B, f.imgB.String())
	s, _ := f.client.Status(ctx, h.addr)
	if s.Slots.Switches != 1 || s.Slots.Committed == nil || s.Slots.Committed.N != 1 {
		t.Fatalf("h1's slots: %+v; want one switch, committed", s.Slots)
	}
	if s.RunID != 0 {
		t.Fatalf("the agent on b was sent %d runs after the restart (last: %+v)", s.RunID, s.Last)
	}
	evs := mustEvents(t, audit)
	starts := 0
	for _, e := range evs {
		if e.Action == rollout.Start {
			starts++
		}
	}
	res, _ := first(evs, func(e rollout.Event) bool { return e.Action == rollout.Resumed && len(e.Hosts) == 1 })
	if starts != 1 || res.Hosts == nil {
		t.Fatalf("audit: %d starts, resumed %+v:\n%s", starts, res, audit.String())
	}
}
