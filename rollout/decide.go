package rollout

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ingotfleet/ingot/rollout/config"
)

// Phase is where a host stands in a rollout.
type Phase string

// The phases of a host. Syncing, Checking and Cooling count against the
// budgets of the host's sets.
const (
	Pending  Phase = "pending"
	Syncing  Phase = "syncing"  // committed before the sync is sent
	Checking Phase = "checking" // synced; health gates running
	Cooling  Phase = "cooling"  // healthy; still counts for Cooldown
	Done     Phase = "done"
	Failed   Phase = "failed" // sync or health failed; its sets are frozen
	Skipped  Phase = "skipped"
)

func (p Phase) active() bool   { return p == Syncing || p == Checking || p == Cooling }
func (p Phase) terminal() bool { return p == Done || p == Skipped }

// HostState is one host's record in the store.
type HostState struct {
	Phase Phase     `json:"phase"`
	Since time.Time `json:"since"`
	// Step counts the host's starts; a host is synced at most once per
	// step, even by a controller restarted mid-sync.
	Step int `json:"step"`
	// Base is the agent's last run id seen before the sync was sent, so a
	// restarted controller can tell whether its request arrived.
	Base int64 `json:"base,omitempty"`
	// SlotBase is the agent's slot switch counter seen before a slot
	// sync was sent (mode slot): the switch the rollout waits for is the
	// next one.
	SlotBase int    `json:"slot_base,omitempty"`
	Run      int64  `json:"run,omitempty"`
	Error    string `json:"error,omitempty"`
}

// State is a rollout's record in the store, besides the hosts.
type State struct {
	Image    string            `json:"image"`
	Started  time.Time         `json:"started"`
	Paused   bool              `json:"paused,omitempty"`
	Aborted  bool              `json:"aborted,omitempty"`
	Halted   string            `json:"halted,omitempty"` // why, once halted
	Frozen   map[string]string `json:"frozen,omitempty"` // set -> the failed host that froze it
	Failures int               `json:"failures"`
	// StageDone says when each finished stage's last host finished; its
	// bake counts from there.
	StageDone map[int]time.Time    `json:"stage_done,omitempty"`
	Hosts     map[string]HostState `json:"-"` // stored under their own keys
}

// Kind is the kind of an indicator.
type Kind string

// Indicator kinds, as alerts name them.
const (
	MaintenanceRequired Kind = "MaintenanceRequired"
	Blocked             Kind = "Blocked"
	Unavailable         Kind = "Unavailable"
)

// Signal is one indicator on a host and where it came from.
type Signal struct {
	Kind   Kind   `json:"kind"`
	Source string `json:"source"` // e.g. "prometheus alert HostLoggedIn"
}

// Indicators are every host's signals at one instant. Down, when set,
// says a source could not be read: every host then counts as Blocked.
type Indicators struct {
	Hosts map[string][]Signal
	Down  string
}

func (ind Indicators) has(host string, k Kind) (string, bool) {
	for _, s := range ind.Hosts[host] {
		if s.Kind == k {
			return s.Source, true
		}
	}
	return "", false
}

// Action is what a Decision does.
type Action string

// Actions.
const (
	Start     Action = "start"      // sync the host now
	Wait      Action = "wait"       // the host may not start now; Reason says why
	Finish    Action = "finish"     // the host's cooldown is over: done
	StageDone Action = "stage_done" // the stage's last host finished; its bake starts
	Halt      Action = "halt"       // past the failure limit: nothing starts any more
)

// SetUse is a set's budget as a decision saw it.
type SetUse struct {
	Set  string `json:"set"`
	Used int    `json:"used"`
	Max  int    `json:"max"`
}

// Decision is one thing the controller will do or not do, and why.
type Decision struct {
	Action Action   `json:"action"`
	Host   string   `json:"host,omitempty"`
	Stage  int      `json:"stage"`
	Step   int      `json:"step,omitempty"`
	Reason string   `json:"reason"`
	Budget []SetUse `json:"budget,omitempty"` // the host's sets, counting this decision
}

// Plan is the static part of a rollout: which stage each host is in.
// Stage 0 holds the canary colos' hosts (empty without canary colos);
// stages 1.. are the waves.
type Plan struct {
	Inv    *config.Inventory
	Pol    *config.Policy
	Stages [][]string
	Bake   []time.Duration
	stage  map[string]int
	size   map[string]int // set -> hosts
}

// LoadPlan reads an inventory and a policy file and makes their plan.
func LoadPlan(inventoryFile, policyFile string) (*Plan, error) {
	inv, err := config.LoadInventory(inventoryFile)
	if err != nil {
		return nil, err
	}
	pol, err := config.LoadPolicy(policyFile, inv)
	if err != nil {
		return nil, err
	}
	return NewPlan(inv, pol), nil
}

// NewPlan splits the inventory into stages by the policy.
func NewPlan(inv *config.Inventory, pol *config.Policy) *Plan {
	pl := &Plan{Inv: inv, Pol: pol, stage: map[string]int{}, size: map[string]int{}}
	for _, s := range inv.SetNames() {
		pl.size[s] = len(inv.SetHosts(s))
	}
	var canary, rest []config.Host
	for _, h := range inv.Hosts {
		if slices.Contains(pol.Canary.Colos, h.Colo) {
			canary = append(canary, h)
		} else {
			rest = append(rest, h)
		}
	}
	pl.add(canary, pol.Canary.Bake)
	// Interleave the other hosts by their first set, so that "1 per set"
	// is a prefix and percentages spread over the sets.
	idx := map[string]int{}
	rank := map[string]int{}
	for _, h := range rest {
		rank[h.Name] = idx[h.Sets[0]]
		idx[h.Sets[0]]++
	}
	sort.SliceStable(rest, func(i, j int) bool {
		a, b := rest[i], rest[j]
		return cmp.Or(cmp.Compare(rank[a.Name], rank[b.Name]), cmp.Compare(a.Sets[0], b.Sets[0])) < 0
	})
	done := 0
	for _, w := range pol.Waves {
		n, _ := config.ParseWave(w.Size, len(rest))
		if n < 0 { // 1 per set
			n = len(idx)
		}
		if n <= done {
			continue
		}
		pl.add(rest[done:n], w.Bake)
		done = n
	}
	if done < len(rest) {
		pl.add(rest[done:], 0)
	}
	return pl
}

func (pl *Plan) add(hs []config.Host, bake time.Duration) {
	var names []string
	for _, h := range hs {
		pl.stage[h.Name] = len(pl.Stages)
		names = append(names, h.Name)
	}
	pl.Stages = append(pl.Stages, names)
	pl.Bake = append(pl.Bake, bake)
}

// Stage returns the stage a host is in.
func (pl *Plan) Stage(host string) int { return pl.stage[host] }

// Budget returns the set's max_unavailable resolved for its size.
func (pl *Plan) Budget(set string) int { return pl.Pol.Budget(set, pl.size[set]) }

// Outcome is what Decide found.
type Outcome struct {
	Decisions []Decision
	Stage     int            // the stage hosts start from now
	Used      map[string]int // per set, after the decisions
	Complete  bool           // every host done or skipped
}

// Decide says, from the state, the indicators, the slots held outside
// the rollout (FleetLock: host -> reason) and the time, which hosts start
// now, which wait and why. It does not change st; the controller commits
// the decisions before it acts on them.
func Decide(pl *Plan, st *State, ind Indicators, held map[string]string, now time.Time) Outcome {
	d := &deciding{pl: pl, st: st, ind: ind, held: held, now: now,
		out: Outcome{Used: map[string]int{}}, finished: map[string]bool{}}
	d.finishCooled()
	stage, baking := d.currentStage()
	d.out.Stage = stage
	if stage >= len(pl.Stages) {
		d.out.Complete = baking == ""
		return d.out
	}
	d.startOrWait(stage, d.stopReason(stage, baking))
	return d.out
}

// deciding is one Decide under way: its inputs and the outcome so far.
type deciding struct {
	pl   *Plan
	st   *State
	ind  Indicators
	held map[string]string
	now  time.Time

	out      Outcome
	finished map[string]bool // hosts that finish with this decision
}

// hs is the state of host n (Pending if it has none yet).
func (d *deciding) hs(n string) HostState {
	if h, ok := d.st.Hosts[n]; ok {
		return h
	}
	return HostState{Phase: Pending}
}

// terminal reports whether host n is done, skipped or finishing now.
func (d *deciding) terminal(n string) bool { return d.hs(n).Phase.terminal() || d.finished[n] }

// finishCooled finishes the hosts cooled down long enough and counts the
// budget in use: hosts worked on or cooling, hosts Unavailable, slots
// held through FleetLock. A host counts once per set.
func (d *deciding) finishCooled() {
	pl, out := d.pl, &d.out
	counts := func(name string) bool {
		if d.hs(name).Phase.active() {
			return true
		}
		if _, ok := d.ind.has(name, Unavailable); ok {
			return true
		}
		_, ok := d.held[name]
		return ok
	}
	for _, h := range pl.Inv.Hosts {
		s := d.hs(h.Name)
		if s.Phase == Cooling && !d.now.Before(s.Since.Add(pl.Pol.Cooldown)) {
			d.finished[h.Name] = true
			out.Decisions = append(out.Decisions, Decision{Action: Finish, Host: h.Name, Stage: pl.Stage(h.Name), Step: s.Step,
				Reason: fmt.Sprintf("healthy and cooled down for %v", pl.Pol.Cooldown)})
		}
		if counts(h.Name) && !d.finished[h.Name] {
			for _, set := range h.Sets {
				out.Used[set]++
			}
		}
	}
	for i := range out.Decisions {
		out.Decisions[i].Budget = pl.use(out.Used, out.Decisions[i].Host)
	}
}

// currentStage is the first stage not finished, or the one after a stage
// still baking (then baking says until when). A stage found finished for
// the first time gets a StageDone decision.
func (d *deciding) currentStage() (stage int, baking string) {
	pl := d.pl
	for s, names := range pl.Stages {
		if !slices.ContainsFunc(names, func(n string) bool { return !d.terminal(n) }) {
			at, ok := d.st.StageDone[s]
			if !ok {
				at = d.now
				d.out.Decisions = append(d.out.Decisions, Decision{Action: StageDone, Stage: s,
					Reason: fmt.Sprintf("all %d hosts of stage %d done; baking %v", len(names), s, pl.Bake[s])})
			}
			if d.now.Before(at.Add(pl.Bake[s])) {
				return s + 1, fmt.Sprintf("stage %d baking until %s", s, at.Add(pl.Bake[s]).UTC().Format(time.RFC3339))
			}
			continue
		}
		return s, ""
	}
	return len(pl.Stages), ""
}

// stopReason is why no host may start now ("" if they may): aborted,
// halted (too many failures halt the rollout now, a Halt decision),
// paused, or a stage baking.
func (d *deciding) stopReason(stage int, baking string) string {
	halted := d.st.Halted
	if halted == "" && d.st.Failures > d.pl.Pol.Failures.Limit {
		halted = fmt.Sprintf("%d hosts failed, more than the limit of %d", d.st.Failures, d.pl.Pol.Failures.Limit)
		d.out.Decisions = append(d.out.Decisions, Decision{Action: Halt, Stage: stage, Reason: halted})
	}
	switch {
	case d.st.Aborted:
		return "rollout aborted"
	case halted != "":
		return "rollout halted: " + halted
	case d.st.Paused:
		return "rollout paused"
	}
	return baking
}

// startOrWait decides for each pending host of stage, those that report
// MaintenanceRequired first: start it, or wait and why.
func (d *deciding) startOrWait(stage int, stop string) {
	pl, out := d.pl, &d.out
	names := slices.Clone(pl.Stages[stage])
	slices.SortStableFunc(names, func(a, b string) int {
		_, ma := d.ind.has(a, MaintenanceRequired)
		_, mb := d.ind.has(b, MaintenanceRequired)
		switch {
		case ma && !mb:
			return -1
		case mb && !ma:
			return 1
		}
		return 0
	})
	for _, n := range names {
		s := d.hs(n)
		if s.Phase != Pending {
			continue
		}
		h, _ := pl.Inv.Host(n)
		if reason := d.waitReason(n, h, stop); reason != "" {
			out.Decisions = append(out.Decisions, Decision{Action: Wait, Host: n, Stage: stage, Reason: reason, Budget: pl.use(out.Used, n)})
			continue
		}
		for _, set := range h.Sets {
			out.Used[set]++
		}
		out.Decisions = append(out.Decisions, Decision{Action: Start, Host: n, Stage: stage, Step: s.Step + 1,
			Reason: fmt.Sprintf("stage %d, within budget", stage), Budget: pl.use(out.Used, n)})
	}
}

// waitReason is why pending host n (h) must wait ("" if it may start now),
// the first of: the rollout stopped, a set frozen or outside its window,
// indicators down or against the host, a slot held outside, no budget.
func (d *deciding) waitReason(n string, h config.Host, stop string) string {
	if stop != "" {
		return stop
	}
	if set := frozen(d.st, h); set != "" {
		return fmt.Sprintf("set %s frozen: host %s failed", set, d.st.Frozen[set])
	}
	if set := closed(d.pl.Pol, h, d.now); set != "" {
		return fmt.Sprintf("set %s outside its maintenance window", set)
	}
	if d.ind.Down != "" {
		return "blocked: indicators unknown: " + d.ind.Down
	}
	if src, ok := d.ind.has(n, Blocked); ok {
		return "blocked: " + src
	}
	if src, ok := d.ind.has(n, Unavailable); ok {
		return "unavailable: " + src
	}
	if r, ok := d.held[n]; ok {
		return "holds a slot through " + r
	}
	return d.pl.full(d.out.Used, h)
}

func frozen(st *State, h config.Host) string {
	for _, s := range h.Sets {
		if _, ok := st.Frozen[s]; ok {
			return s
		}
	}
	return ""
}

func closed(pol *config.Policy, h config.Host, now time.Time) string {
	for _, s := range h.Sets {
		if !pol.Open(s, now) {
			return s
		}
	}
	return ""
}

func (pl *Plan) full(used map[string]int, h config.Host) string {
	var full []string
	for _, s := range h.Sets {
		if m := pl.Budget(s); used[s]+1 > m {
			full = append(full, fmt.Sprintf("%s %d/%d", s, used[s], m))
		}
	}
	if len(full) == 0 {
		return ""
	}
	return "budget full: " + strings.Join(full, ", ")
}

func (pl *Plan) use(used map[string]int, host string) []SetUse {
	h, _ := pl.Inv.Host(host)
	var u []SetUse
	for _, s := range h.Sets {
		u = append(u, SetUse{Set: s, Used: used[s], Max: pl.Budget(s)})
	}
	return u
}
