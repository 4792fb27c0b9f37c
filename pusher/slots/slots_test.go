package slots

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher"
	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/pusher/slots/boot"
	"github.com/ingotfleet/ingot/pusher/slots/carry"
)

func imageA() map[string]string {
	big := strings.Repeat("library bytes ", 20000)
	return map[string]string{
		"etc/hostname":        "image\n",
		"etc/ssh/sshd_config": "# sshd\nPort 22\nPermitRootLogin no\nX11Forwarding no\n",
		"etc/app.conf":        "x=1\n",
		"etc/both.conf":       "v=1\n",
		"etc/removed.conf":    "old\n",
		"etc/ok":              "healthy\n",
		"usr/bin/tool":        "tool v1\n",
		"usr/lib/libbig.so":   big,
		"usr/lib/libsame.so":  strings.Repeat("same ", 30000),
		"var/lib/ingot-agent": "dir",
		"srv":                 "dir",
	}
}

func imageB() map[string]string {
	b := imageA()
	b["etc/ssh/sshd_config"] = "# sshd\nPort 22\nPermitRootLogin no\nX11Forwarding no\nUsePAM yes\n"
	b["etc/both.conf"] = "v=2\n"
	b["usr/bin/tool"] = "tool v2\n"
	b["usr/share/doc/new"] = "new in B\n"
	return b
}

// The whole slot life on directory slots, in process: A is synced in
// place; the host edits its /etc; B is written to slot b (seeded from a,
// /etc merged three ways, local paths carried), switched to on trial,
// committed by a passing check; rollback to a returns a unchanged; C,
// whose check fails, falls back to a by itself and is reported; a C that
// never comes up (a reboot without the agent) is reported too.
func TestSlotLifecycle(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	dA, dB := f.publish(t, imageA()), f.publish(t, imageB())
	imgC := imageB()
	delete(imgC, "etc/ok")
	imgC["usr/bin/tool"] = "tool v3\n"
	dC := f.publish(t, imgC)

	var healthy atomic.Bool
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			http.Error(w, "sick", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	conf := f.config(t, "  health: {deadline: 2s, checks: [{http: "+srv.URL+"}, {command: [true]}]}\n")

	// Slot a at A, synced in place; then the host's own edits.
	m := f.manager(t, conf)
	if res := m.Agent.Syncer.Sync(ctx, dA, f.source(t), pusher.SyncOptions{}); !res.OK {
		t.Fatalf("sync A: %s", res.Error)
	}
	if _, err := m.AtBoot(ctx); err != nil {
		t.Fatal(err)
	}
	writeTree(t, f.slotA, map[string]string{
		"etc/hostname":                 "myhost\n",
		"etc/ssh/ssh_host_ed25519_key": "secret key\n",
		"etc/app.conf":                 "x=host\n",
		"etc/both.conf":                "v=host\n",
		"etc/ssh/sshd_config":          "# sshd\nPort 2222\nPermitRootLogin no\nX11Forwarding no\n",
		"etc/local-only.conf":          "mine\n",
		"srv/data":                     "customer data\n",
	})
	os.Remove(filepath.Join(f.slotA, "etc/removed.conf"))
	sumA := treeSum(t, f.slotA)

	src := f.source(t)
	res := m.SyncSlot(ctx, dB, src, pusher.SyncOptions{}, true)
	if !res.OK || res.Slot != boot.B || !res.Switched {
		t.Fatalf("slot sync: %+v", res)
	}
	if got := treeSum(t, f.slotA); got != sumA {
		t.Fatal("the booted slot changed during the slot sync")
	}
	// Content slot a holds was copied, not fetched.
	if res.LocalFiles < 3 {
		t.Errorf("only %d files copied from the booted slot", res.LocalFiles)
	}
	recv, _, _ := src.Stats()
	t.Logf("slot sync A → B: %.2fs, %d files copied from slot a, %d bytes fetched (image B holds %d bytes of libraries alone)",
		res.Seconds, res.LocalFiles, recv, len(imageB()["usr/lib/libbig.so"])+len(imageB()["usr/lib/libsame.so"]))
	if recv > 100000 {
		t.Errorf("fetched %d bytes: the booted slot's libraries were fetched again", recv)
	}
	rep := res.Carry.(*carry.Report)
	want := map[string]string{
		"etc/hostname":                 "myhost\n",
		"etc/ssh/ssh_host_ed25519_key": "secret key\n",
		"etc/app.conf":                 "x=host\n",
		"etc/both.conf":                "v=2\n",
		"etc/ssh/sshd_config":          "# sshd\nPort 2222\nPermitRootLogin no\nX11Forwarding no\nUsePAM yes\n",
		"etc/local-only.conf":          "mine\n",
		"usr/bin/tool":                 "tool v2\n",
	}
	for p, c := range want {
		if b, err := os.ReadFile(filepath.Join(f.slotB, p)); string(b) != c {
			t.Errorf("slot b %s = %q, %v; want %q", p, b, err, c)
		}
	}
	for _, p := range []string{"etc/removed.conf", "srv/data"} {
		if _, err := os.Lstat(filepath.Join(f.slotB, p)); err == nil {
			t.Errorf("slot b has %s", p)
		}
	}
	slices.Sort(rep.Conflicts)
	if !slices.Equal(rep.Conflicts, []string{"etc/both.conf", "etc/ssh/sshd_config"}) {
		t.Errorf("conflicts %v", rep.Conflicts)
	}
	if !slices.Contains(rep.Carried, "etc/hostname") || !slices.Contains(rep.Carried, "etc/ssh/ssh_host_ed25519_key") {
		t.Errorf("carried %v", rep.Carried)
	}
	if res.Snapshot == "" {
		t.Fatal("no snapshot taken")
	}
	// Outside what was carried and merged, slot b is the image bit for bit.
	args := []string{"--store", f.store, "image", "verify", dB.String(), "--root", f.slotB,
		"--exclude", "var/lib/ingot-agent/**", "--exclude", "etc/ssh/ssh_host_*"}
	for _, d := range rep.Etc {
		args = append(args, "--exclude", d.Path)
	}
	for _, p := range rep.Carried {
		args = append(args, "--exclude", p)
	}
	if out, err := exec.Command(ingotBinary(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("ingot image verify: %v\n%s", err, out)
	}

	// Reboot: b on trial, committed when healthy.
	fb := &boot.FileBoot{Path: f.bootFile}
	if s, _ := fb.Boot(); s != boot.B {
		t.Fatalf("booted %s after the switch", s)
	}
	m = f.manager(t, conf)
	if m.Agent.Config.Root != f.slotB {
		t.Fatalf("agent root %s on slot b", m.Agent.Config.Root)
	}
	if att, err := m.AtBoot(ctx); att != nil || err != nil {
		t.Fatalf("trial of b: %v %v", att, err)
	}
	st, _ := m.Status()
	if st.Default != boot.B || st.Trial != nil || st.LastSwitch == nil || st.LastSwitch.Downtime <= 0 {
		t.Fatalf("after commit: %+v", st)
	}
	t.Logf("A → B downtime (switch to checks passing, no real reboot): %.3fs", st.LastSwitch.Downtime)
	if s, _ := fb.Boot(); s != boot.B {
		t.Fatal("the second reboot left b")
	}

	// Rollback to a, without any store.
	if err := m.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := fb.Boot(); s != boot.A {
		t.Fatal("rollback did not boot a")
	}
	if got := treeSum(t, f.slotA); got != sumA {
		t.Fatal("slot a changed between its commit and the rollback")
	}
	m = f.manager(t, conf)
	if _, err := m.AtBoot(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.Status(); st.Default != boot.A {
		t.Fatalf("rollback not committed: %+v", st)
	}

	// C's check fails: the trial records it and the next boot is a.
	if res := m.SyncSlot(ctx, dC, f.source(t), pusher.SyncOptions{}, true); !res.OK {
		t.Fatalf("slot sync C: %s", res.Error)
	}
	fb.Boot()
	healthy.Store(false)
	m = f.manager(t, conf)
	m.Poll = 100 * time.Millisecond
	att, err := m.AtBoot(ctx)
	if err != nil || att == nil || att.Slot != boot.B || !strings.Contains(att.Reason, "health checks failed") {
		t.Fatalf("failed trial: %+v %v", att, err)
	}
	healthy.Store(true)
	if s, _ := fb.Boot(); s != boot.A {
		t.Fatal("the boot after a failed trial did not return to a")
	}
	// C never comes up: the host is rebooted back before any agent ran.
	m = f.manager(t, conf)
	if err := m.Switch(ctx); err != nil {
		t.Fatal(err)
	}
	fb.Boot() // b: the kernel panics, nothing runs
	fb.Boot() // the watchdog reboots: a
	m = f.manager(t, conf)
	att, err = m.AtBoot(ctx)
	if err != nil || att == nil || !strings.Contains(att.Reason, "came back on slot a") {
		t.Fatalf("trial that never came up: %+v %v", att, err)
	}
	if st, _ := m.Status(); len(st.Attempts) != 2 || st.Default != boot.A {
		t.Fatalf("after two failed attempts: %+v", st)
	}
	if got := treeSum(t, f.slotA); got != sumA {
		t.Fatal("slot a changed")
	}
}

// With the policy "fail", a conflict stops the slot sync: the slot is
// not switchable and the report lists the path.
func TestSlotConflictFails(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	dA, dB := f.publish(t, imageA()), f.publish(t, imageB())
	conf := f.config(t, "")
	// etc/both.conf takes the image by policy; use a path without one.
	os.WriteFile(conf, []byte(strings.Replace(mustRead(t, conf), "etc/both.conf, policy: take-image", "etc/nothing, policy: take-image", 1)), 0o644)
	m := f.manager(t, conf)
	if res := m.Agent.Syncer.Sync(ctx, dA, f.source(t), pusher.SyncOptions{}); !res.OK {
		t.Fatal(res.Error)
	}
	os.WriteFile(filepath.Join(f.slotA, "etc/both.conf"), []byte("v=host\n"), 0o644)
	res := m.SyncSlot(ctx, dB, f.source(t), pusher.SyncOptions{}, true)
	if res.OK || res.Switched || !strings.Contains(res.Error, "etc/both.conf") {
		t.Fatalf("conflict with policy fail: %+v", res)
	}
	if rep := res.Carry.(*carry.Report); !slices.Equal(rep.Failed, []string{"etc/both.conf"}) {
		t.Fatalf("failed %v", rep.Failed)
	}
	if err := m.Switch(ctx); err == nil {
		t.Fatal("switched to a slot whose carry-over failed")
	}
	if _, err := os.Stat(filepath.Join(f.dir, "data")); err != nil {
		t.Fatal(err)
	}
	if d, _ := (&boot.FileBoot{Path: f.bootFile}).Default(); d != boot.A {
		t.Fatal("bootloader default moved")
	}
}

func TestSnapshotRestore(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	dA := f.publish(t, imageA())
	m := f.manager(t, f.config(t, ""))
	if res := m.Agent.Syncer.Sync(ctx, dA, f.source(t), pusher.SyncOptions{}); !res.OK {
		t.Fatal(res.Error)
	}
	writeTree(t, f.slotA, map[string]string{"etc/app.conf": "x=host\n", "etc/hostname": "myhost\n", "etc/new.d/x": "y\n"})
	os.Symlink("app.conf", filepath.Join(f.slotA, "etc/app.link"))
	snap, err := m.Snapshot(ctx, "manual")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("tar", "-tzf", snap).CombinedOutput()
	if err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	list := string(out)
	for _, p := range []string{"etc/app.conf", "etc/hostname", "etc/new.d/x", "etc/app.link"} {
		if !strings.Contains(list, p+"\n") {
			t.Errorf("snapshot lacks %s:\n%s", p, list)
		}
	}
	if strings.Contains(list, "etc/both.conf") || strings.Contains(list, "usr/") {
		t.Errorf("snapshot holds paths at the image:\n%s", list)
	}
	// Wreck the configuration, then restore it.
	os.WriteFile(filepath.Join(f.slotA, "etc/app.conf"), []byte("broken\n"), 0o644)
	os.RemoveAll(filepath.Join(f.slotA, "etc/new.d"))
	os.Remove(filepath.Join(f.slotA, "etc/app.link"))
	if _, err := m.Restore(ctx, snap); err != nil {
		t.Fatal(err)
	}
	for p, c := range map[string]string{"etc/app.conf": "x=host\n", "etc/new.d/x": "y\n", "etc/hostname": "myhost\n"} {
		if b, _ := os.ReadFile(filepath.Join(f.slotA, p)); string(b) != c {
			t.Errorf("%s = %q after restore", p, b)
		}
	}
	if l, _ := os.Readlink(filepath.Join(f.slotA, "etc/app.link")); l != "app.conf" {
		t.Errorf("symlink restored as %q", l)
	}
	if !errors.Is(func() error { _, err := m.Restore(ctx, filepath.Join(f.dir, "nope")); return err }(), os.ErrNotExist) {
		t.Error("restoring a missing snapshot did not fail")
	}
}

func mustRead(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Attack 9 on a slot host: the inactive slot must not take an image older
// than the host has run (a hostile store answering an old ref), whichever
// slot is booted; an explicit rollback may.
func TestSlotRefusesOlderImage(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	dA, dB := f.publish(t, imageA()), f.publish(t, imageB()) // generations 1, 2
	conf := f.config(t, "")
	m := f.manager(t, conf)
	if res := m.Agent.Syncer.Sync(ctx, dB, f.source(t), pusher.SyncOptions{}); !res.OK {
		t.Fatal(res.Error)
	}
	res := m.SyncSlot(ctx, dA, f.source(t), pusher.SyncOptions{Ref: "app:prod"}, true)
	if res.OK || res.Switched || !strings.Contains(res.Error, pusher.ErrOlder.Error()) {
		t.Fatalf("slot sync to an older image: want %v, got %+v", pusher.ErrOlder, res)
	}
	for _, p := range []string{"usr/bin/tool", "etc/app.conf"} {
		if _, err := os.Lstat(filepath.Join(f.slotB, p)); err == nil {
			t.Errorf("the refused image's %s is in the inactive slot", p)
		}
	}
	if err := m.Switch(ctx); err == nil {
		t.Fatal("switched to a slot whose sync was refused")
	}
	if d, _ := (&boot.FileBoot{Path: f.bootFile}).Default(); d != boot.A {
		t.Fatal("bootloader default moved")
	}
	// The operator asks for it: allowed.
	if res := m.SyncSlot(ctx, dA, f.source(t), pusher.SyncOptions{Ref: "app:prod", AllowRollback: true}, false); !res.OK {
		t.Fatalf("explicit rollback into the slot: %s", res.Error)
	}
}

// While a slot sync runs, the agent's status shows it: the image being
// written, the step and the sync engine's progress (files and bytes done
// of the total); after it, the switch it made.
func TestSlotSyncProgressInStatus(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	dA, dB := f.publish(t, manyFiles(imageA(), 20, "a")), f.publish(t, manyFiles(imageB(), 20, "b"))
	conf := f.config(t, "")
	m := f.manager(t, conf)
	if res := m.Agent.Syncer.Sync(ctx, dA, f.source(t), pusher.SyncOptions{}); !res.OK {
		t.Fatalf("sync A: %s", res.Error)
	}
	var seen []api.Status
	pusher.CrashHook = func(string) { seen = append(seen, m.Agent.Status()) }
	defer func() { pusher.CrashHook = nil }()
	if res := m.SyncSlot(ctx, dB, f.source(t), pusher.SyncOptions{}, true); !res.OK {
		t.Fatalf("slot sync: %s", res.Error)
	}
	pusher.CrashHook = nil
	var mid *api.Status
	for i := range seen {
		s := &seen[i]
		if s.Slots == nil || s.Slots.Writing != dB.String() {
			t.Fatalf("status during the slot sync: %+v", s.Slots)
		}
		if p := s.Slots.Progress; mid == nil && p != nil && p.FilesDone > 0 && p.FilesDone < p.FilesTotal {
			mid = s
		}
	}
	if mid == nil {
		t.Fatalf("no status in %d showed a slot sync part done", len(seen))
	}
	p := mid.Progress
	if !strings.HasPrefix(p.Phase, "slot sync ") || p.BytesTotal == 0 || p.FilesTotal < 20 {
		t.Errorf("status progress mid-sync: %+v", p)
	}
	if mid.Image != dA.String() {
		t.Errorf("mid-sync the booted root's image is %s, want %s", mid.Image, dA)
	}
	after := m.Agent.Status()
	if sl := after.Slots; sl == nil || sl.Writing != "" || sl.Progress != nil || sl.Switches != 1 || sl.Trial == nil || sl.Trial.N != 1 || sl.Trial.Slot != boot.B {
		t.Fatalf("status after the slot sync and switch: %+v", after.Slots)
	}
	// Booted on b, on trial: slot a is its fallback and is not written.
	(&boot.FileBoot{Path: f.bootFile}).Boot()
	mb := f.manager(t, conf)
	sumA := treeSum(t, f.slotA)
	if res := mb.SyncSlot(ctx, dA, f.source(t), pusher.SyncOptions{}, false); res.OK || !strings.Contains(res.Error, "fallback") {
		t.Fatalf("a slot sync during the trial: %+v", res)
	}
	if treeSum(t, f.slotA) != sumA {
		t.Fatal("the refused slot sync changed the fallback slot")
	}
}
