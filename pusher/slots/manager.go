package slots

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/glob"
	"github.com/ingotfleet/ingot/pusher"
	"github.com/ingotfleet/ingot/pusher/agent"
	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/pusher/fetch"
	"github.com/ingotfleet/ingot/pusher/slots/boot"
	"github.com/ingotfleet/ingot/pusher/slots/carry"
)

// Manager does a host's slot work: slot syncs, switch, commit, rollback,
// the trial at boot, snapshots.
type Manager struct {
	Agent *agent.Agent
	C     *agent.SlotsConfig
	Boot  boot.Boot
	Log   *slog.Logger
	// Poll is the health checks' interval (default 1s).
	Poll time.Duration
	// Run runs the kexec commands (nil: as processes; tests replace it).
	Run func(ctx context.Context, argv []string) error
	// clock and kernelStart are time.Now and kernelStarted, replaced in
	// tests.
	clock       func() time.Time
	kernelStart func() (time.Time, error)

	mu sync.Mutex
	// The running slot sync, for Summary: its image, step and syncer.
	writing, phase atomic.Value // string
	cur            atomic.Pointer[pusher.Syncer]
}

// Prepare readies an agent config for slots before the agent is made:
// with directory slots, the root (and a state directory inside it) is
// the booted slot's directory. It returns the bootloader backend.
func Prepare(c *agent.Config) (boot.Boot, error) {
	if c.Slots == nil {
		return nil, errors.New("slots: the agent's config has no slots section")
	}
	b, err := boot.New(&c.Slots.Boot)
	if err != nil {
		return nil, err
	}
	booted, err := b.Booted()
	if err != nil {
		return nil, err
	}
	sc := slotConfig(c.Slots, booted)
	if sc.Dir != "" {
		rel, err := filepath.Rel(c.Root, c.StateDir)
		if err != nil || strings.HasPrefix(rel, "..") || rel == "." {
			return nil, fmt.Errorf("slots: with directory slots the agent's state_dir must be inside its root (it belongs to the slot)")
		}
		c.Root, c.StateDir = sc.Dir, filepath.Join(sc.Dir, rel)
	}
	return b, nil
}

func slotConfig(c *agent.SlotsConfig, s string) agent.SlotConfig {
	if s == boot.B {
		return c.B
	}
	return c.A
}

// New makes the manager of an agent made from a Prepared config.
func New(ag *agent.Agent, b boot.Boot, log *slog.Logger) *Manager {
	// The anti-rollback record lives beside the slots' state (on the data
	// partition), so whichever slot is booted judges images by the
	// newest generation either slot was given.
	if ag.Syncer.Generations == "" {
		ag.Syncer.Generations = filepath.Join(ag.Config.Slots.StateDir, "generations.json")
	}
	return &Manager{Agent: ag, C: ag.Config.Slots, Boot: b, Log: log}
}

func (m *Manager) now() time.Time {
	if m.clock != nil {
		return m.clock().UTC()
	}
	return time.Now().UTC()
}

// kernelStarted is when the running kernel started by the wall clock:
// now less CLOCK_BOOTTIME (the time since boot, suspend included).
func kernelStarted() (time.Time, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}, err
	}
	return time.Now().Add(-time.Duration(ts.Nano())), nil
}

func (m *Manager) kernel() time.Time {
	f := m.kernelStart
	if f == nil {
		f = kernelStarted
	}
	t, err := f()
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// Status is what GET /v1/slots/status returns.
type Status struct {
	Booted  string `json:"booted"`
	Default string `json:"default,omitempty"`
	*State
}

// Status reads the slots' state.
func (m *Manager) Status() (Status, error) {
	st, err := LoadState(m.C.StateDir)
	if err != nil {
		return Status{}, err
	}
	s := Status{State: st}
	if s.Booted, err = m.Boot.Booted(); err != nil {
		return s, err
	}
	m.noteBooted(st, s.Booted)
	s.Default, _ = m.Boot.Default()
	return s, nil
}

// relState is the agent's state directory relative to its root.
func (m *Manager) relState() string {
	r, err := filepath.Rel(m.Agent.Config.Root, m.Agent.Config.StateDir)
	if err != nil || strings.HasPrefix(r, "..") {
		return "var/lib/ingot-agent"
	}
	return filepath.ToSlash(r)
}

// skip reports paths neither carried nor merged nor snapshotted: the
// never-touched paths and the agent's state directory.
func (m *Manager) skip(p string) bool {
	rs := m.relState()
	if p == rs || strings.HasPrefix(p, rs+"/") {
		return true
	}
	for _, k := range m.C.Keep {
		k = strings.Trim(k, "/")
		if p == k || strings.HasPrefix(p, k+"/") {
			return true
		}
	}
	return false
}

// baseManifest is the manifest of the image the booted root was last
// synced to (nil, "" when it never was).
func (m *Manager) baseManifest() (*images.Manifest, images.Digest, error) {
	st, err := m.Agent.Syncer.LoadState()
	if err != nil || st.Image.IsZero() {
		return nil, images.Digest{}, err
	}
	mf, err := readManifest(m.Agent.Config.StateDir, st.Image)
	return mf, st.Image, err
}

func readManifest(stateDir string, d images.Digest) (*images.Manifest, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, "manifests", d.String()))
	if err != nil {
		return nil, err
	}
	if images.Sum(b) != d {
		return nil, fmt.Errorf("%w: saved manifest %s", fetch.ErrCorrupt, d)
	}
	return images.ParseManifest(bytes.NewReader(b))
}

// Snapshot writes a snapshot of the booted slot's configuration to the
// snapshot directory and returns its path.
func (m *Manager) Snapshot(ctx context.Context, why string) (string, error) {
	base, _, err := m.baseManifest()
	if err != nil {
		return "", err
	}
	booted, err := m.Boot.Booted()
	if err != nil {
		return "", err
	}
	t, err := pusher.OpenTree(m.Agent.Config.Root)
	if err != nil {
		return "", err
	}
	defer t.Close()
	name := filepath.Join(m.C.SnapshotDir, fmt.Sprintf("%s-slot-%s-%s.tar.gz", m.now().Format("20060102T150405.000000000Z"), booted, why))
	if _, err := carry.TakeSnapshot(ctx, t, base, m.C.Carry, m.skip, name); err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	return name, nil
}

// Restore writes a snapshot back into the booted root.
func (m *Manager) Restore(ctx context.Context, file string) (int, error) {
	t, err := pusher.OpenTree(m.Agent.Config.Root)
	if err != nil {
		return 0, err
	}
	defer t.Close()
	return carry.RestoreSnapshot(ctx, file, t)
}

// mount makes the slot's root reachable: a directory slot is its
// directory; a device is mounted under the slots' state directory.
func (m *Manager) mount(slot string) (string, func(), error) {
	sc := slotConfig(m.C, slot)
	if sc.Dir != "" {
		return sc.Dir, func() {}, nil
	}
	mnt := filepath.Join(m.C.StateDir, "mnt", slot)
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return "", nil, err
	}
	_ = unix.Unmount(mnt, unix.MNT_DETACH) // a mount left by a crash, if any
	if err := unix.Mount(sc.Device, mnt, sc.FSType, unix.MS_NODEV|unix.MS_NOSUID, ""); err != nil {
		return "", nil, fmt.Errorf("mounting slot %s (%s): %w", slot, sc.Device, err)
	}
	return mnt, func() {
		if err := syncUnmount(mnt); err != nil && m.Log != nil {
			m.Log.Error("unmounting slot", "slot", slot, "err", err)
		}
	}, nil
}

// syncUnmount flushes the filesystem mounted at mnt and unmounts it.
func syncUnmount(mnt string) error {
	fd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		err = unix.Syncfs(fd)
		_ = unix.Close(fd) // read-only
	}
	if uerr := unix.Unmount(mnt, 0); uerr != nil {
		return errors.Join(err, fmt.Errorf("unmounting %s: %w", mnt, uerr))
	}
	return err
}

// slotSyncer is a Syncer of the slot mounted at root, seeded from the
// booted root and running triggers chrooted.
func (m *Manager) slotSyncer(root string, base *images.Manifest) (*pusher.Syncer, error) {
	// The slot gets the whole image (its /tmp, /var/log, /etc/hostname
	// too): only what is under the never-touched paths is left alone, the
	// mount points themselves made. The host's local files come after,
	// by the carry-over.
	keep := []string{}
	for _, k := range m.C.Keep {
		keep = append(keep, strings.Trim(k, "/")+"/*/**")
	}
	kg, err := glob.CompileSet(keep)
	if err != nil {
		return nil, err
	}
	as := m.Agent.Syncer
	return &pusher.Syncer{
		Root: root, StateDir: filepath.Join(root, m.relState()),
		// The host's anti-rollback record, not the slot's own: a slot
		// must not be given an image older than the host has run.
		Generations: as.GenerationsFile(),
		Local:       kg, Cross: as.Cross,
		Trusted: as.Trusted, Triggers: as.Triggers, Concurrency: as.Concurrency,
		WriteLimit: as.WriteLimit, Log: m.Log,
		Slot: &pusher.SlotSync{SeedRoot: m.Agent.Config.Root, SeedManifest: base, Chroot: true},
	}, nil
}

// SyncSlot writes image d into the slot that is not booted: a snapshot
// of the host's configuration first, then the sync (staged, journaled,
// its own state inside the slot), then the carry-over. The booted root
// is only read. With switchAfter it then switches to the slot.
func (m *Manager) SyncSlot(ctx context.Context, d images.Digest, src fetch.Source, opts pusher.SyncOptions, switchAfter bool) api.Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	start := time.Now()
	m.writing.Store(d.String())
	defer func() {
		m.writing.Store("")
		m.phase.Store("")
		m.cur.Store(nil)
	}()
	res, err := m.syncSlot(ctx, d, src, opts, switchAfter)
	res.Image = d.String()
	res.Seconds = time.Since(start).Seconds()
	if err != nil {
		res.OK, res.Error = false, err.Error()
	}
	return res
}

func (m *Manager) syncSlot(ctx context.Context, d images.Digest, src fetch.Source, opts pusher.SyncOptions, switchAfter bool) (api.Result, error) {
	var res api.Result
	booted, err := m.Boot.Booted()
	if err != nil {
		return res, err
	}
	target := boot.Other(booted)
	res.Slot = target
	st, err := LoadState(m.C.StateDir)
	if err != nil {
		return res, err
	}
	if st.Trial != nil && st.Trial.Slot == target {
		return res, fmt.Errorf("slot %s is switched to and waits for its boot: reboot, or roll back first", target)
	}
	if t := st.Trial; t != nil && t.Armed && t.Slot == booted {
		return res, fmt.Errorf("slot %s is on trial and slot %s is its fallback: wait until the trial commits", booted, target)
	}
	base, baseD, err := m.baseManifest()
	if err != nil {
		return res, fmt.Errorf("the booted slot's image: %w", err)
	}
	m.phase.Store("snapshot")
	if res.Snapshot, err = m.Snapshot(ctx, "before-sync"); err != nil {
		return res, err
	}
	st.Slots[target] = &SlotState{Writing: d.String()}
	if err := st.Save(m.C.StateDir); err != nil {
		return res, err
	}
	root, unmount, err := m.mount(target)
	if err != nil {
		return res, err
	}
	defer unmount()
	ss, err := m.slotSyncer(root, base)
	if err != nil {
		return res, err
	}
	m.phase.Store("sync")
	m.cur.Store(ss)
	r := ss.Sync(ctx, d, src, opts)
	r.Slot, r.Snapshot = res.Slot, res.Snapshot
	res = r
	if !r.OK {
		return res, errors.New(r.Error)
	}
	crash("slot-synced")
	newM, err := readManifest(ss.StateDir, d)
	if err != nil {
		return res, err
	}
	bt, err := pusher.OpenTree(m.Agent.Config.Root)
	if err != nil {
		return res, err
	}
	defer bt.Close()
	sl, err := pusher.OpenTree(root)
	if err != nil {
		return res, err
	}
	defer sl.Close()
	m.phase.Store("carry")
	c := &carry.Carry{Booted: bt, Slot: sl, Base: base, New: newM, Carry: m.C.Carry, Skip: m.skip, Policy: m.policy,
		BaseContent: func(ctx context.Context, sha images.Digest, size int64) ([]byte, error) {
			return src.Object(ctx, sha, size)
		}}
	rep, cerr := c.Run(ctx)
	rep.Image = d.String()
	if !baseD.IsZero() {
		rep.Base = baseD.String()
	}
	res.Carry = rep
	crash("slot-carried")
	if cerr != nil {
		st.Slots[target] = &SlotState{Writing: d.String(), Report: rep}
		if err := st.Save(m.C.StateDir); err != nil {
			cerr = errors.Join(cerr, err)
		}
		return res, cerr
	}
	st.Slots[target] = &SlotState{Image: d.String(), Base: rep.Base, SyncedAt: m.now(), Report: rep}
	if err := st.Save(m.C.StateDir); err != nil {
		return res, err
	}
	crash("slot-ready")
	if switchAfter {
		m.phase.Store("switch")
		mode := viaBootloader
		if m.C.Kexec {
			mode = kexecIfSame
		}
		if err := m.switchLocked(ctx, st, booted, target, false, mode); err != nil {
			return res, err
		}
		res.Switched = true
	}
	return res, nil
}

func (m *Manager) policy(p string) string {
	for _, ep := range m.C.EtcPolicies {
		g, err := glob.CompileSet([]string{ep.Path})
		if err == nil && g.Match(p) {
			return ep.Policy
		}
	}
	return m.C.EtcDefault
}

// Switch makes the next boot, once, start the other slot, which must
// hold a whole image; the agent there commits it when healthy. With the
// config's kexec, the other slot is kexec'd into when its kernel is the
// running one.
func (m *Manager) Switch(ctx context.Context) error {
	mode := viaBootloader
	if m.C.Kexec {
		mode = kexecIfSame
	}
	return m.switchOther(ctx, false, mode)
}

// SwitchKexec switches to the other slot by kexec (kexec.go), or fails
// when it cannot: kexec-tools missing, a directory slot, a kernel that
// differs from the running one.
func (m *Manager) SwitchKexec(ctx context.Context) error {
	return m.switchOther(ctx, false, kexecOnly)
}

// How a switch starts the other slot.
type kexecMode int

const (
	viaBootloader kexecMode = iota
	kexecIfSame             // kexec when it can, else the bootloader
	kexecOnly               // kexec or an error
)

// switchOther boots the other slot once, on trial.
func (m *Manager) switchOther(ctx context.Context, rollback bool, mode kexecMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	booted, st, err := m.bootedState()
	if err != nil {
		return err
	}
	return m.switchLocked(ctx, st, booted, boot.Other(booted), rollback, mode)
}

// bootedState is the booted slot and the slots' state (the caller holds
// m.mu).
func (m *Manager) bootedState() (string, *State, error) {
	booted, err := m.Boot.Booted()
	if err != nil {
		return "", nil, err
	}
	st, err := LoadState(m.C.StateDir)
	return booted, st, err
}

// noteBooted records the image the booted slot is at (its agent's
// state: in-place syncs change it too).
func (m *Manager) noteBooted(st *State, booted string) {
	if as, err := m.Agent.Syncer.LoadState(); err == nil && !as.Image.IsZero() {
		s := st.Slots[booted]
		s.Image, s.Writing = as.Image.String(), ""
	}
}

func (m *Manager) switchLocked(ctx context.Context, st *State, booted, target string, rollback bool, mode kexecMode) error {
	m.noteBooted(st, booted)
	s := st.Slots[target]
	if s.Image == "" || s.Writing != "" {
		return fmt.Errorf("slot %s holds no complete image: sync it first", target)
	}
	var kx *boot.KexecPlan
	if mode != viaBootloader {
		p, unmount, err := m.planKexec(target)
		switch {
		case err == nil:
			defer unmount()
			kx = &p
		case mode == kexecIfSame && (errors.Is(err, boot.ErrKernelChanged) || errors.Is(err, boot.ErrKexecUnavailable) || errors.Is(err, errKexecDirSlot)):
			if m.Log != nil {
				m.Log.Info("switching through the bootloader, not kexec", "reason", err)
			}
		default:
			return err
		}
	}
	if _, err := m.Snapshot(ctx, "before-switch"); err != nil {
		return err
	}
	// The trial is recorded before the bootloader is told (or the kernel
	// loaded), and armed after: a crash between the two leaves a trial
	// the next boot drops.
	st.Switches++
	st.Trial = &Trial{N: st.Switches, Slot: target, From: booted, Image: s.Image, Since: m.now(), Rollback: rollback, Kexec: kx != nil}
	if err := st.Save(m.C.StateDir); err != nil {
		return err
	}
	var arm error
	var load, execute []string
	if kx != nil {
		load, execute = kx.Commands(isDir("/run/systemd/system"))
		arm = m.run(ctx, load)
	} else {
		arm = m.Boot.TryNext(target)
	}
	if arm != nil {
		st.fail(Attempt{N: st.Trial.N, Slot: target, Image: s.Image, At: m.now(), Reason: "the switch failed: " + arm.Error()})
		st.Trial = nil
		if err := st.Save(m.C.StateDir); err != nil {
			return errors.Join(arm, err)
		}
		return arm
	}
	st.Trial.Armed = true
	if err := st.Save(m.C.StateDir); err != nil {
		return err
	}
	if kx != nil {
		go func() {
			time.Sleep(time.Second)
			if err := m.run(context.Background(), execute); err != nil && m.Log != nil {
				m.Log.Error("kexec failed", "err", err)
			}
		}()
		return nil
	}
	m.reboot()
	return nil
}

var errKexecDirSlot = errors.New("slots: kexec needs device slots (a kernel boots a root device, not a directory)")

// planKexec mounts the target slot and plans a kexec into it; the slot
// stays mounted (kexec -l reads the kernel) until unmount.
func (m *Manager) planKexec(target string) (boot.KexecPlan, func(), error) {
	if _, err := exec.LookPath("kexec"); err != nil {
		return boot.KexecPlan{}, nil, boot.ErrKexecUnavailable
	}
	sc := slotConfig(m.C, target)
	if sc.Device == "" {
		return boot.KexecPlan{}, nil, errKexecDirSlot
	}
	cl := m.C.Boot.Cmdline
	if cl == "" {
		cl = "/proc/cmdline"
	}
	cmdline, err := os.ReadFile(cl)
	if err != nil {
		return boot.KexecPlan{}, nil, err
	}
	root, unmount, err := m.mount(target)
	if err != nil {
		return boot.KexecPlan{}, nil, err
	}
	p, err := boot.PlanKexec(m.Agent.Config.Root, root, "", "", string(cmdline), target, sc.Device)
	if err != nil {
		unmount()
		return boot.KexecPlan{}, nil, err
	}
	return p, unmount, nil
}

func (m *Manager) run(ctx context.Context, argv []string) error {
	if m.Run != nil {
		return m.Run(ctx, argv)
	}
	return run(ctx, argv)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// reboot runs the configured reboot command in a moment (so an API call
// that asked for it is answered first).
func (m *Manager) reboot() {
	if len(m.C.Reboot) == 0 {
		return
	}
	go func() {
		time.Sleep(time.Second)
		if out, err := exec.Command(m.C.Reboot[0], m.C.Reboot[1:]...).CombinedOutput(); err != nil && m.Log != nil {
			m.Log.Error("reboot failed", "err", err, "output", string(out))
		}
	}()
}

// Commit makes the booted slot the default.
func (m *Manager) Commit(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	booted, st, err := m.bootedState()
	if err != nil {
		return err
	}
	return m.commitLocked(st, booted, time.Time{})
}

// commitLocked makes booted the default; agent is when the agent that
// judged the trial started (zero: unknown).
func (m *Manager) commitLocked(st *State, booted string, agent time.Time) error {
	if err := m.Boot.SetDefault(booted); err != nil {
		return err
	}
	st.Default = booted
	if t := st.Trial; t != nil && t.Slot == booted {
		now := m.now()
		sw := &Switched{N: t.N, From: t.From, To: booted, At: t.Since, Healthy: now, Downtime: now.Sub(t.Since).Seconds()}
		if !agent.IsZero() {
			sw.Kernel, sw.Agent = m.kernel(), agent.UTC()
			sw.phases()
		}
		st.LastSwitch = sw
		st.Trial = nil
	}
	return st.Save(m.C.StateDir)
}

// Rollback switches back to the other slot, without the network: the
// slot is booted on trial like any switch, so a slot that no longer
// boots cannot strand the host.
func (m *Manager) Rollback(ctx context.Context) error {
	return m.switchOther(ctx, true, viaBootloader)
}

// AtBoot settles a switch when the agent starts: on the slot on trial it
// runs the health checks until the deadline and commits, or records the
// failed attempt and reboots (back to the default); on the old slot it
// records that the new one did not come up. It returns the attempt
// recorded, if any.
func (m *Manager) AtBoot(ctx context.Context) (*Attempt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	start := time.Now()
	started := m.now()
	booted, st, err := m.bootedState()
	if err != nil {
		return nil, err
	}
	m.noteBooted(st, booted)
	t := st.Trial
	switch {
	case t == nil:
		if st.Default == "" {
			st.Default = booted
		}
		return nil, st.Save(m.C.StateDir)
	case !t.Armed:
		// The switch was cut short before the bootloader was told: the
		// host never left its slot; recorded so a controller waiting on
		// this switch learns it failed.
		a := Attempt{N: t.N, Slot: t.Slot, Image: t.Image, At: m.now(), Reason: "the switch was interrupted before the bootloader was told"}
		st.fail(a)
		st.Trial = nil
		return &a, st.Save(m.C.StateDir)
	case booted == t.From:
		a := Attempt{N: t.N, Slot: t.Slot, Image: t.Image, At: m.now(),
			Reason: fmt.Sprintf("the host came back on slot %s: slot %s did not come up healthy (kernel, init or the agent failed, or a reboot before the checks passed)", booted, t.Slot)}
		st.fail(a)
		st.Trial = nil
		return &a, st.Save(m.C.StateDir)
	}
	// On the slot on trial.
	m.mu.Unlock()
	poll := m.Poll
	if poll <= 0 {
		poll = time.Second
	}
	herr := WaitHealthy(ctx, m.C.Health.Checks, start.Add(m.C.Health.Deadline), poll)
	m.mu.Lock()
	if herr == nil {
		return nil, m.commitLocked(st, booted, started)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	a := Attempt{N: t.N, Slot: booted, Image: t.Image, At: m.now(), Reason: "health checks failed: " + herr.Error()}
	st.fail(a)
	st.Trial = nil
	if err := st.Save(m.C.StateDir); err != nil {
		return &a, err
	}
	m.reboot()
	return &a, nil
}

// Summary implements agent.SlotManager: the slots' part of the agent's
// status. It reads the state files and never waits for the slot work.
func (m *Manager) Summary() *api.SlotSummary {
	sum := &api.SlotSummary{}
	if w, _ := m.writing.Load().(string); w != "" {
		sum.Writing = w
		sum.Phase, _ = m.phase.Load().(string)
		if ss := m.cur.Load(); ss != nil && sum.Phase == "sync" {
			p := ss.Progress()
			sum.Phase += " " + p.Phase
			sum.Progress = &p
		} else {
			sum.Progress = &api.ProgressSnapshot{}
		}
	}
	s, err := m.Status()
	if err != nil {
		sum.Error = err.Error()
		return sum
	}
	sum.Booted, sum.Default, sum.Switches = s.Booted, s.Default, s.Switches
	if t := s.Trial; t != nil {
		sum.Trial = &api.SlotOutcome{N: t.N, Slot: t.Slot, Image: t.Image}
	}
	if l := s.LastSwitch; l != nil {
		sum.Committed = &api.SlotOutcome{N: l.N, Slot: l.To, Image: s.Slots[l.To].Image, Downtime: l.Downtime}
	}
	if n := len(s.Attempts); n > 0 {
		a := s.Attempts[n-1]
		sum.Failed = &api.SlotOutcome{N: a.N, Slot: a.Slot, Image: a.Image, Reason: a.Reason}
	}
	return sum
}

// Handler serves /v1/slots/status (GET) and /v1/slots/switch, commit,
// rollback (POST); POST /v1/slots/switch?kexec=1 switches by kexec or
// fails (SwitchKexec).
func (m *Manager) Handler() http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any, err error) {
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusConflict)
			// A client gone away has nothing to read either.
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /v1/slots/status", func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Status()
		reply(w, s, err)
	})
	for name, fn := range map[string]func(context.Context) error{"switch": m.Switch, "commit": m.Commit, "rollback": m.Rollback} {
		mux.HandleFunc("POST /v1/slots/"+name, func(w http.ResponseWriter, r *http.Request) {
			do := fn
			if name == "switch" && r.URL.Query().Get("kexec") == "1" {
				do = m.SwitchKexec
			}
			err := do(r.Context())
			s, _ := m.Status()
			reply(w, s, err)
		})
	}
	return mux
}

// crash is a crash point at the steps of a slot sync after the sync
// proper: pusher.CrashHook, the one hook the crash tests set, sees them
// as it sees the sync's own steps.
func crash(step string) {
	if pusher.CrashHook != nil {
		pusher.CrashHook(step)
	}
}

// run runs a command, its output in the error.
func run(ctx context.Context, argv []string) error {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
