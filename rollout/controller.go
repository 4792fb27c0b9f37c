package rollout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/rollout/config"
)

// AgentStatus is what the controller needs of an agent's status.
type AgentStatus struct {
	Image   string
	Syncing bool
	RunID   int64 // the last run started
	LastID  int64 // the last run finished
	LastOK  bool
	LastErr string
	// Indicators are what the host itself reports (the agent's
	// maintenance config: a flag file, logins, a command). A failed last
	// sync is read from LastOK: the controller counts it as Unavailable
	// unless this rollout synced the host itself.
	Indicators []Signal
	// Slots, for an agent with root slots: what a slot rollout follows
	// (nil otherwise).
	Slots *api.SlotSummary
}

// pusherStatus is as as the pusher's status, for SlotSyncOutcome.
func (as AgentStatus) pusherStatus() api.Status {
	return api.Status{Image: as.Image, Syncing: as.Syncing, RunID: as.RunID, LastID: as.LastID, Slots: as.Slots,
		Last: &api.Result{OK: as.LastOK, Error: as.LastErr}}
}

// SlotAgents drives agents with root slots (policy mode: slot).
type SlotAgents interface {
	// SyncSlot starts a sync of the host's inactive slot to image and
	// the switch to it; it returns the run id.
	SyncSlot(ctx context.Context, h config.Host, image string) (int64, error)
	// RollbackSlot switches the host back to its other slot, on trial.
	RollbackSlot(ctx context.Context, h config.Host) error
}

// Agents drives the hosts' agents.
type Agents interface {
	Status(ctx context.Context, h config.Host) (AgentStatus, error)
	// Sync starts a sync to image and returns the run id.
	Sync(ctx context.Context, h config.Host, image string) (int64, error)
	// Rollback starts a rollback and returns the run id.
	Rollback(ctx context.Context, h config.Host) (int64, error)
}

// Checker runs a host's health gates once; nil error means healthy.
type Checker func(ctx context.Context, h config.Host) error

// Event is one line of the audit log: a decision, or what came of one.
type Event struct {
	Time time.Time `json:"time"`
	Decision
	// Hosts, on a Resumed event, are the hosts the committed state holds
	// at work (syncing, checking or cooling down) when a controller
	// takes over.
	Hosts []string `json:"hosts,omitempty"`
}

// Audit actions besides the decisions'.
const (
	Synced     Action = "synced"     // the agent reports the image; health gates next
	Healthy    Action = "healthy"    // health gates passed; cooldown starts
	Fail       Action = "fail"       // sync or health failed; the host's sets freeze
	RolledBack Action = "rolledback" // the failed host was rolled back
	Command    Action = "command"    // an operator's pause, resume, abort, skip, retry
	SlotTaken  Action = "slot_taken" // a FleetLock client took a slot
	SlotFreed  Action = "slot_freed"
	// Resumed is logged when a controller loads the state and takes over.
	// The audit line of a transition is written after its commit, so a
	// controller killed between the two loses that line; the state is
	// the authority, and this event restates which hosts are at work.
	Resumed Action = "resumed"
)

// Controller drives a rollout: it evaluates Decide every interval,
// commits each transition to the Store before acting on it, and drives
// the agents. With an Elector it acts only while it leads.
type Controller struct {
	Plan       *Plan
	Store      Store
	Elector    Elector // nil: this controller alone
	Agents     Agents
	Indicators func(ctx context.Context) Indicators // nil: none
	Health     Checker                              // nil: no gates
	Audit      io.Writer                            // JSON lines; nil: none
	Log        *slog.Logger
	Now        func() time.Time
	// Poll is how often a running sync is polled (default Interval/5).
	Poll time.Duration
	// OnTick, when set, sees every evaluation (for displays and metrics).
	OnTick func(Outcome, *State)

	mu       sync.Mutex
	st       *State
	held     map[string]Holder
	lastInd  Indicators
	last     Outcome
	leading  bool
	waits    map[string]string
	blocked  map[string]time.Time // host -> since when it waits blocked
	agentInd map[string][]Signal  // pending hosts held by their agent's indicators
	counts   map[Action]int       // decisions and events so far
	inflight map[string]bool
	wg       sync.WaitGroup
	auditMu  sync.Mutex
}

// ErrNoRollout is returned when the store holds no rollout.
var ErrNoRollout = errors.New("rollout: no rollout in the state store")

// ErrUnknownHost is returned (wrapped) for a host not in the inventory.
var ErrUnknownHost = errors.New("rollout: unknown host")

func (c *Controller) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Controller) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c.Log
}

// Begin records a new rollout of image in the store, or leaves the one
// there when it is of the same image (a restarted controller resumes).
// A rollout of another image that is not finished is refused.
func Begin(ctx context.Context, s Store, pl *Plan, image string, now time.Time) (*State, error) {
	st, err := LoadState(ctx, s)
	if err != nil {
		return nil, err
	}
	if st != nil {
		if st.Image == image {
			return st, nil
		}
		if !st.Aborted && !complete(pl, st) {
			return nil, fmt.Errorf("a rollout of %s is in progress in the state store; abort it first", st.Image)
		}
	}
	st = &State{Image: image, Started: now, Hosts: map[string]HostState{}}
	t := newTxn()
	t.meta(st)
	old, err := s.List(ctx, keyHostPrefix)
	if err != nil {
		return nil, err
	}
	for k := range old {
		t.puts[k] = nil
	}
	if err := commitAll(ctx, s, t.puts); err != nil {
		return nil, fmt.Errorf("recording the rollout: %w", err)
	}
	return st, nil
}

// commitChunk is the most keys one Commit writes: below etcd's default
// --max-txn-ops. Each host's record stands alone, so a transition of many
// hosts may go in several commits; the meta record goes in the last.
const commitChunk = 100

func commitAll(ctx context.Context, s Store, puts map[string][]byte) error {
	if len(puts) <= commitChunk {
		return s.Commit(ctx, puts)
	}
	keys := slices.Sorted(maps.Keys(puts))
	if i := slices.Index(keys, keyMeta); i >= 0 {
		keys = append(slices.Delete(keys, i, i+1), keyMeta)
	}
	for len(keys) > 0 {
		n := min(commitChunk, len(keys))
		chunk := map[string][]byte{}
		for _, k := range keys[:n] {
			chunk[k] = puts[k]
		}
		if err := s.Commit(ctx, chunk); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

func complete(pl *Plan, st *State) bool {
	for _, h := range pl.Inv.Hosts {
		if !st.Hosts[h.Name].Phase.terminal() {
			return false
		}
	}
	return true
}

// Run drives the rollout until it completes, halts for good (an
// aborted rollout returns at once) or ctx ends. With an Elector it
// campaigns first, acts only while leading, and campaigns again when it
// loses leadership.
func (c *Controller) Run(ctx context.Context) error {
	for {
		if c.Elector != nil {
			if err := c.Elector.Campaign(ctx); err != nil {
				return err
			}
			c.log().Info("leading")
		}
		lctx, cancel := context.WithCancel(ctx)
		if c.Elector != nil {
			go func() {
				select {
				case <-c.Elector.Lost():
					cancel()
				case <-lctx.Done():
				}
			}()
		}
		err := c.lead(lctx)
		cancel()
		c.wg.Wait()
		c.mu.Lock()
		c.leading = false
		c.mu.Unlock()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.Elector == nil || (err != nil && !errors.Is(err, ErrNotLeader) && lctx.Err() == nil) {
			return err
		}
		if err == nil {
			return nil
		}
		c.log().Warn("lost leadership", "err", err)
	}
}

func (c *Controller) load(ctx context.Context) error {
	st, err := LoadState(ctx, c.Store)
	if err != nil {
		return err
	}
	if st == nil {
		return ErrNoRollout
	}
	slots, err := c.Store.List(ctx, keySlotPrefix)
	if err != nil {
		return err
	}
	held := map[string]Holder{}
	for _, v := range slots {
		var h Holder
		if json.Unmarshal(v, &h) == nil {
			held[h.Host] = h
		}
	}
	c.mu.Lock()
	c.st, c.held, c.leading = st, held, true
	c.waits, c.inflight = map[string]string{}, map[string]bool{}
	c.blocked = map[string]time.Time{}
	c.agentInd = map[string][]Signal{}
	var atWork []string
	for _, h := range c.Plan.Inv.Hosts {
		if st.Hosts[h.Name].Phase.active() {
			atWork = append(atWork, h.Name)
		}
	}
	c.mu.Unlock()
	c.audit(Event{Time: c.now(), Decision: Decision{Action: Resumed, Reason: fmt.Sprintf("state loaded: %d hosts at work", len(atWork))}, Hosts: atWork})
	return nil
}

func (c *Controller) lead(ctx context.Context) error {
	if err := c.load(ctx); err != nil {
		return err
	}
	tick := time.NewTicker(c.Plan.Pol.Interval)
	defer tick.Stop()
	for {
		out, err := c.Tick(ctx)
		if err != nil {
			return err
		}
		c.mu.Lock()
		idle := len(c.inflight) == 0
		aborted := c.st.Aborted
		c.mu.Unlock()
		if idle && (out.Complete || aborted) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Tick evaluates once: reads the indicators, decides, commits the
// transitions, then starts the hosts' work. It also resumes the work of
// hosts a previous controller left syncing or checking.
func (c *Controller) Tick(ctx context.Context) (Outcome, error) {
	ind := Indicators{}
	if c.Indicators != nil {
		ind = c.Indicators(ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.leading {
		return Outcome{}, ErrNotLeader
	}
	now := c.now()
	st := c.st
	ind = c.withAgentIndicators(ctx, st, ind)
	out := Decide(c.Plan, st, ind, c.heldReasons(), now)
	c.lastInd = ind
	t := newTxn()
	next := cloneState(st)
	var events []Event
	var work []string
	statuses := c.startStatuses(ctx, out.Decisions)
	for i := range out.Decisions {
		d := &out.Decisions[i]
		if c.apply(d, statuses[i], st, next, t, now) {
			work = append(work, d.Host)
		}
		c.count(d.Action)
		if c.noteWait(d, now) {
			events = append(events, Event{Time: now, Decision: *d})
		}
	}
	if err := commitAll(ctx, c.Store, t.puts); err != nil {
		return out, fmt.Errorf("committing decisions: %w", err)
	}
	c.st = next
	c.last = out
	c.audit(events...)
	c.startWork(ctx, next, work)
	if c.OnTick != nil {
		c.OnTick(out, next)
	}
	return out, nil
}

// apply makes decision d's transition in next (from st, the state it was
// decided on) and records it in t. A Start becomes a Wait when the
// agent's status (from startStatuses) is an error or a signal to hold
// off. It reports whether the host's work is to start.
// c.mu is held.
func (c *Controller) apply(d *Decision, status statusResult, st, next *State, t *txn, now time.Time) bool {
	switch d.Action {
	case Finish:
		h := next.Hosts[d.Host]
		h.Phase, h.Since = Done, now
		next.Hosts[d.Host] = h
		t.host(d.Host, h)
	case StageDone:
		if next.StageDone == nil {
			next.StageDone = map[int]time.Time{}
		}
		next.StageDone[d.Stage] = now
		t.meta(next)
	case Halt:
		next.Halted = d.Reason
		t.meta(next)
	case Start:
		as, err := status.as, status.err
		if err != nil {
			d.Action, d.Step, d.Reason = Wait, 0, "blocked: agent unreachable: "+err.Error()
			return false
		}
		if sigs := agentSignals(as, st.Hosts[d.Host]); len(sigs) > 0 {
			// Held from the next evaluation on by the indicators
			// (an Unavailable one uses a slot), asked again each time.
			c.agentInd[d.Host] = sigs
			d.Action, d.Step, d.Reason = Wait, 0, signalReason(sigs)
			return false
		}
		hs := HostState{Phase: Syncing, Since: now, Step: d.Step, Base: as.RunID}
		if as.Slots != nil {
			hs.SlotBase = as.Slots.Switches
		}
		if as.Image == st.Image && !as.Syncing {
			hs.Phase = Checking
			d.Reason += "; already at the image: health gates only"
		}
		next.Hosts[d.Host] = hs
		t.host(d.Host, hs)
		return true
	}
	return false
}

// noteWait keeps track of the hosts waiting (and since when blocked) and
// reports whether d is news for the audit log: a Wait is only when its
// reason changed. c.mu is held.
func (c *Controller) noteWait(d *Decision, now time.Time) bool {
	if d.Action == Wait {
		if strings.HasPrefix(d.Reason, "blocked") {
			if _, ok := c.blocked[d.Host]; !ok {
				c.blocked[d.Host] = now
			}
		} else {
			delete(c.blocked, d.Host)
		}
		if c.waits[d.Host] == d.Reason {
			return false
		}
		c.waits[d.Host] = d.Reason
	} else if d.Host != "" {
		delete(c.waits, d.Host)
		delete(c.blocked, d.Host)
	}
	return true
}

// startWork starts the work of the hosts in work and of every host next
// has syncing or checking with no work running (left by a previous
// controller). c.mu is held.
func (c *Controller) startWork(ctx context.Context, next *State, work []string) {
	for name, hs := range next.Hosts {
		if (hs.Phase == Syncing || hs.Phase == Checking) && !c.inflight[name] {
			work = append(work, name)
		}
	}
	for _, name := range work {
		if c.inflight[name] {
			continue
		}
		c.inflight[name] = true
		c.wg.Add(1)
		go c.work(ctx, name)
	}
}

type statusResult struct {
	as  AgentStatus
	err error
}

// startStatuses asks the agents of the hosts due to start for their
// status.
func (c *Controller) startStatuses(ctx context.Context, ds []Decision) []statusResult {
	names := make([]string, len(ds))
	for i, d := range ds {
		if d.Action == Start {
			names[i] = d.Host
		}
	}
	return c.statuses(ctx, names)
}

// withAgentIndicators asks again the agents of the pending hosts their
// indicators held back, and returns ind with theirs added. An agent that
// does not answer keeps its host Blocked.
func (c *Controller) withAgentIndicators(ctx context.Context, st *State, ind Indicators) Indicators {
	var names []string
	for n := range c.agentInd {
		if hs, ok := st.Hosts[n]; !ok || hs.Phase == Pending {
			names = append(names, n)
		} else {
			delete(c.agentInd, n)
		}
	}
	if len(names) == 0 {
		return ind
	}
	for i, r := range c.statuses(ctx, names) {
		n := names[i]
		sigs := agentSignals(r.as, st.Hosts[n])
		if r.err != nil {
			sigs = []Signal{{Kind: Blocked, Source: "agent unreachable: " + r.err.Error()}}
		}
		if len(sigs) == 0 {
			delete(c.agentInd, n)
		} else {
			c.agentInd[n] = sigs
		}
	}
	merged := Indicators{Hosts: maps.Clone(ind.Hosts), Down: ind.Down}
	if merged.Hosts == nil {
		merged.Hosts = map[string][]Signal{}
	}
	for n, sigs := range c.agentInd {
		merged.Hosts[n] = slices.Concat(merged.Hosts[n], sigs)
	}
	return merged
}

// agentSignals are the indicators an agent's status gives its host.
func agentSignals(as AgentStatus, hs HostState) []Signal {
	var sigs []Signal
	for _, s := range as.Indicators {
		if s.Kind == Blocked || s.Kind == Unavailable {
			sigs = append(sigs, s)
		}
	}
	if !as.LastOK && !as.Syncing && hs.Step == 0 {
		sigs = append(sigs, Signal{Kind: Unavailable, Source: "agent: last sync failed: " + as.LastErr})
	}
	return sigs
}

// signalReason is the wait reason the first Blocked signal, or else the
// first Unavailable one, gives (as Decide words it).
func signalReason(sigs []Signal) string {
	for _, k := range []Kind{Blocked, Unavailable} {
		for _, s := range sigs {
			if s.Kind == k {
				return strings.ToLower(string(k)) + ": " + s.Source
			}
		}
	}
	return ""
}

// statuses asks the agents of the named hosts (empty names skipped) for
// their status, at most 32 at once and each within the indicator
// timeout, so that unreachable agents do not hold an evaluation up long.
func (c *Controller) statuses(ctx context.Context, names []string) []statusResult {
	res := make([]statusResult, len(names))
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i, n := range names {
		if n == "" {
			continue
		}
		h, _ := c.Plan.Inv.Host(n)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sctx, cancel := context.WithTimeout(ctx, c.Plan.Pol.Indicators.Timeout)
			defer cancel()
			res[i].as, res[i].err = c.Agents.Status(sctx, h)
		}()
	}
	wg.Wait()
	return res
}

func cloneState(st *State) *State {
	n := *st
	n.Hosts = maps.Clone(st.Hosts)
	n.Frozen = maps.Clone(st.Frozen)
	n.StageDone = maps.Clone(st.StageDone)
	return &n
}

func (c *Controller) heldReasons() map[string]string {
	m := map[string]string{}
	for h, v := range c.held {
		m[h] = v.Reason
	}
	return m
}

func (c *Controller) count(a Action) {
	c.auditMu.Lock()
	defer c.auditMu.Unlock()
	if c.counts == nil {
		c.counts = map[Action]int{}
	}
	c.counts[a]++
}

// Counts returns how many decisions and events of each action the
// controller made so far.
func (c *Controller) Counts() map[Action]int {
	c.auditMu.Lock()
	defer c.auditMu.Unlock()
	return maps.Clone(c.counts)
}

func (c *Controller) audit(evs ...Event) {
	if len(evs) == 0 {
		return
	}
	c.auditMu.Lock()
	defer c.auditMu.Unlock()
	if c.counts == nil {
		c.counts = map[Action]int{}
	}
	for _, e := range evs {
		switch e.Action {
		case Wait, Start, Finish, StageDone, Halt: // counted by Tick
		default:
			c.counts[e.Action]++
		}
	}
	if c.Audit == nil {
		return
	}
	var buf []byte
	for _, e := range evs {
		b, _ := json.Marshal(e)
		buf = append(append(buf, b...), '\n')
	}
	if _, err := c.Audit.Write(buf); err != nil {
		// The state store is the authority (see Resumed): a lost audit
		// line is logged, and the rollout goes on.
		c.log().Error("writing the audit log", "err", err, "events", len(evs))
	}
}

// transition commits a host's new state (and the meta record when f
// says so) and then applies it and writes ev to the audit log. A
// transition of the host alone commits without holding the controller's
// lock, so the many hosts at work commit together (the store batches
// concurrent commits) and evaluations do not queue behind them; the host
// is owned by its worker meanwhile.
func (c *Controller) transition(ctx context.Context, name string, f func(st *State, hs *HostState) (meta bool), ev Event) error {
	c.mu.Lock()
	if !c.leading {
		c.mu.Unlock()
		return ErrNotLeader
	}
	next := *c.st
	next.Frozen = maps.Clone(c.st.Frozen)
	next.StageDone = maps.Clone(c.st.StageDone)
	hs := c.st.Hosts[name]
	meta := f(&next, &hs)
	t := newTxn()
	t.host(name, hs)
	if meta {
		t.meta(&next)
	} else {
		c.mu.Unlock()
	}
	err := c.Store.Commit(ctx, t.puts)
	if !meta {
		c.mu.Lock()
	}
	defer c.mu.Unlock()
	if err != nil {
		return err
	}
	if meta {
		next.Hosts = c.st.Hosts
		c.st = &next
	}
	c.st.Hosts[name] = hs
	ev.Host, ev.Stage, ev.Step = name, c.Plan.Stage(name), hs.Step
	ev.Budget = c.Plan.use(c.usedLocked(), name)
	c.audit(ev)
	return nil
}

// usedLocked counts each set's budget in use now.
func (c *Controller) usedLocked() map[string]int {
	used := map[string]int{}
	for _, h := range c.Plan.Inv.Hosts {
		_, unavailable := c.lastInd.has(h.Name, Unavailable)
		_, held := c.held[h.Name]
		if c.st.Hosts[h.Name].Phase.active() || unavailable || held {
			for _, s := range h.Sets {
				used[s]++
			}
		}
	}
	return used
}

func (c *Controller) poll() time.Duration {
	if c.Poll > 0 {
		return c.Poll
	}
	return max(c.Plan.Pol.Interval/5, 10*time.Millisecond)
}

func (c *Controller) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *Controller) hostState(name string) (HostState, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Hosts[name], c.st.Image
}

// Status is the controller's view for `ingot rollout status`.
type Status struct {
	Image    string               `json:"image"`
	Leading  bool                 `json:"leading"`
	Paused   bool                 `json:"paused,omitempty"`
	Aborted  bool                 `json:"aborted,omitempty"`
	Halted   string               `json:"halted,omitempty"`
	Frozen   map[string]string    `json:"frozen,omitempty"`
	Failures int                  `json:"failures"`
	Stage    int                  `json:"stage"`
	Stages   int                  `json:"stages"`
	Complete bool                 `json:"complete"`
	Hosts    map[string]HostState `json:"hosts"`
	Sets     []SetUse             `json:"sets"`
	Waiting  map[string]string    `json:"waiting,omitempty"` // host -> why
	// BlockedSince says since when each blocked host waits.
	BlockedSince map[string]time.Time `json:"blocked_since,omitempty"`
}

// Snapshot returns the controller's current status.
func (c *Controller) Snapshot() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{Leading: c.leading, Stages: len(c.Plan.Stages)}
	if c.st == nil {
		return s
	}
	s.Image, s.Paused, s.Aborted, s.Halted = c.st.Image, c.st.Paused, c.st.Aborted, c.st.Halted
	s.Frozen, s.Failures = maps.Clone(c.st.Frozen), c.st.Failures
	s.Stage, s.Complete = c.last.Stage, c.last.Complete
	s.Hosts = maps.Clone(c.st.Hosts)
	s.Waiting = maps.Clone(c.waits)
	s.BlockedSince = maps.Clone(c.blocked)
	used := c.usedLocked()
	for _, set := range c.Plan.Inv.SetNames() {
		s.Sets = append(s.Sets, SetUse{Set: set, Used: used[set], Max: c.Plan.Budget(set)})
	}
	return s
}

// Command applies an operator's command: pause, resume, abort, skip
// HOST, retry HOST. It is committed before it returns.
func (c *Controller) Command(ctx context.Context, cmd, host string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.leading || c.st == nil {
		return ErrNotLeader
	}
	next := cloneState(c.st)
	t := newTxn()
	switch cmd {
	case "pause":
		next.Paused = true
	case "resume":
		next.Paused = false
	case "abort":
		next.Aborted = true
	case "skip", "retry":
		if _, ok := c.Plan.Inv.Host(host); !ok {
			return fmt.Errorf("%w: %q", ErrUnknownHost, host)
		}
		hs := next.Hosts[host]
		if hs.Phase.active() {
			return fmt.Errorf("host %s is %s; wait until it is done or failed", host, hs.Phase)
		}
		if cmd == "skip" {
			hs.Phase = Skipped
		} else {
			if hs.Phase != Failed && hs.Phase != Skipped {
				return fmt.Errorf("host %s is %s; only a failed or skipped host is retried", host, hs.Phase)
			}
			hs.Phase, hs.Error = Pending, ""
		}
		hs.Since = c.now()
		next.Hosts[host] = hs
		t.host(host, hs)
		for s, by := range next.Frozen {
			if by == host {
				delete(next.Frozen, s)
			}
		}
		if cmd == "retry" && next.Halted != "" && hs.Phase == Pending {
			// a retry is an operator's word that the failure is understood
			next.Failures = max(0, next.Failures-1)
			if next.Failures <= c.Plan.Pol.Failures.Limit {
				next.Halted = ""
			}
		}
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	t.meta(next)
	if err := c.Store.Commit(ctx, t.puts); err != nil {
		return err
	}
	c.st = next
	reason := cmd
	if host != "" {
		reason += " " + host
	}
	c.audit(Event{Time: c.now(), Decision: Decision{Action: Command, Host: host, Reason: reason}})
	return nil
}

// Acquire implements rollout.Slots: a FleetLock client takes a slot in
// every set of its host.
func (c *Controller) Acquire(ctx context.Context, host string) error {
	h, ok := c.Plan.Inv.Host(host)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownHost, host)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.leading {
		return ErrNotLeader
	}
	if _, ok := c.held[host]; ok {
		return nil
	}
	if c.st.Hosts[host].Phase.active() {
		return nil // the rollout holds its slot already
	}
	if full := c.Plan.full(c.usedLocked(), h); full != "" {
		return fmt.Errorf("%w: %s", ErrNoSlot, full)
	}
	hd := Holder{Host: host, Set: h.Sets[0], Reason: "fleetlock", Since: c.now()}
	b, _ := json.Marshal(hd)
	if err := c.Store.Commit(ctx, map[string][]byte{keySlotPrefix + host: b}); err != nil {
		return err
	}
	c.held[host] = hd
	c.audit(Event{Time: c.now(), Decision: Decision{Action: SlotTaken, Host: host, Reason: "fleetlock pre-reboot", Budget: c.Plan.use(c.usedLocked(), host)}})
	return nil
}

// Release implements rollout.Slots.
func (c *Controller) Release(ctx context.Context, host string) error {
	if _, ok := c.Plan.Inv.Host(host); !ok {
		return fmt.Errorf("%w: %q", ErrUnknownHost, host)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.leading {
		return ErrNotLeader
	}
	if _, ok := c.held[host]; !ok {
		return nil
	}
	if err := c.Store.Commit(ctx, map[string][]byte{keySlotPrefix + host: nil}); err != nil {
		return err
	}
	delete(c.held, host)
	c.audit(Event{Time: c.now(), Decision: Decision{Action: SlotFreed, Host: host, Reason: "fleetlock steady-state", Budget: c.Plan.use(c.usedLocked(), host)}})
	return nil
}

// Holders implements rollout.Slots: the rollout's hosts at work or
// cooling, Unavailable hosts and FleetLock holders, one per set.
func (c *Controller) Holders(context.Context) ([]Holder, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.leading {
		return nil, ErrNotLeader
	}
	var out []Holder
	for _, h := range c.Plan.Inv.Hosts {
		hs := c.st.Hosts[h.Name]
		var reason string
		since := hs.Since
		switch {
		case hs.Phase == Cooling:
			reason = "cooldown"
		case hs.Phase.active():
			reason = "rollout"
		default:
			if _, ok := c.lastInd.has(h.Name, Unavailable); ok {
				reason, since = "unavailable", time.Time{}
			} else if hd, ok := c.held[h.Name]; ok {
				reason, since = hd.Reason, hd.Since
			}
		}
		if reason == "" {
			continue
		}
		for _, s := range h.Sets {
			out = append(out, Holder{Host: h.Name, Set: s, Reason: reason, Since: since})
		}
	}
	slices.SortFunc(out, func(a, b Holder) int {
		if a.Set != b.Set {
			if a.Set < b.Set {
				return -1
			}
			return 1
		}
		if a.Host < b.Host {
			return -1
		}
		if a.Host > b.Host {
			return 1
		}
		return 0
	})
	return out, nil
}

var _ Slots = (*Controller)(nil)

// PlanNow is Decide on the controller's state now, without acting.
func (c *Controller) PlanNow() (Outcome, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st == nil {
		return Outcome{}, ErrNoRollout
	}
	return Decide(c.Plan, c.st, c.lastInd, c.heldReasons(), c.now()), nil
}

// API paths besides FleetLock's.
const (
	PathStatus  = "/v1/rollout"
	PathCommand = "/v1/command"
	PathPlan    = "/v1/plan"
	PathMetrics = "/metrics"
)

// CommandRequest is the body of POST /v1/command.
type CommandRequest struct {
	Command string `json:"command"` // pause, resume, abort, skip, retry
	Host    string `json:"host,omitempty"`
}

// ParseAudit parses an audit log (JSON lines).
func ParseAudit(b []byte) ([]Event, error) {
	var evs []Event
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("audit line %d: %w", n, err)
		}
		evs = append(evs, e)
	}
	return evs, sc.Err()
}
