package rollout

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
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
	Inv    *Inventory
	Pol    *Policy
	Stages [][]string
	Bake   []time.Duration
	stage  map[string]int
	size   map[string]int // set -> hosts
}

// NewPlan splits the inventory into stages by the policy.
func NewPlan(inv *Inventory, pol *Policy) *Plan {
	pl := &Plan{Inv: inv, Pol: pol, stage: map[string]int{}, size: map[string]int{}}
	for _, s := range inv.SetNames() {
		pl.size[s] = len(inv.SetHosts(s))
	}
	var canary, rest []Host
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
		n, _ := parseWave(w.Size, len(rest))
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

func (pl *Plan) add(hs []Host, bake time.Duration) {
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
	out := Outcome{Used: map[string]int{}}
	hs := func(n string) HostState {
		if h, ok := st.Hosts[n]; ok {
			return h
		}
		return HostState{Phase: Pending}
	}
	// Budget in use: hosts worked on or cooling, hosts Unavailable, slots
	// held through FleetLock. A host counts once per set.
	counts := func(name string) bool {
		h := hs(name)
		if h.Phase.active() {
			return true
		}
		if _, ok := ind.has(name, Unavailable); ok {
			return true
		}
		_, ok := held[name]
		return ok
	}
	finished := map[string]bool{}
	for _, h := range pl.Inv.Hosts {
		s := hs(h.Name)
		if s.Phase == Cooling && !now.Before(s.Since.Add(pl.Pol.Cooldown)) {
			finished[h.Name] = true
			out.Decisions = append(out.Decisions, Decision{Action: Finish, Host: h.Name, Stage: pl.Stage(h.Name), Step: s.Step,
				Reason: fmt.Sprintf("healthy and cooled down for %v", pl.Pol.Cooldown)})
		}
		if counts(h.Name) && !finished[h.Name] {
			for _, set := range h.Sets {
				out.Used[set]++
			}
		}
	}
	for i := range out.Decisions {
		out.Decisions[i].Budget = pl.use(out.Used, out.Decisions[i].Host)
	}
	terminal := func(n string) bool { return hs(n).Phase.terminal() || finished[n] }

	// The current stage: the first not finished, or the one after a stage
	// still baking.
	stage, baking := len(pl.Stages), ""
	for s, names := range pl.Stages {
		if !slices.ContainsFunc(names, func(n string) bool { return !terminal(n) }) {
			at, ok := st.StageDone[s]
			if !ok {
				at = now
				out.Decisions = append(out.Decisions, Decision{Action: StageDone, Stage: s,
					Reason: fmt.Sprintf("all %d hosts of stage %d done; baking %v", len(names), s, pl.Bake[s])})
			}
			if now.Before(at.Add(pl.Bake[s])) {
				stage, baking = s+1, fmt.Sprintf("stage %d baking until %s", s, at.Add(pl.Bake[s]).UTC().Format(time.RFC3339))
				break
			}
			continue
		}
		stage = s
		break
	}
	out.Stage = stage
	if stage >= len(pl.Stages) {
		out.Complete = baking == ""
		return out
	}
	halted := st.Halted
	if halted == "" && st.Failures > pl.Pol.Failures.Limit {
		halted = fmt.Sprintf("%d hosts failed, more than the limit of %d", st.Failures, pl.Pol.Failures.Limit)
		out.Decisions = append(out.Decisions, Decision{Action: Halt, Stage: stage, Reason: halted})
	}
	stop := ""
	switch {
	case st.Aborted:
		stop = "rollout aborted"
	case halted != "":
		stop = "rollout halted: " + halted
	case st.Paused:
		stop = "rollout paused"
	case baking != "":
		stop = baking
	}
	names := slices.Clone(pl.Stages[stage])
	// Hosts that report MaintenanceRequired go first.
	slices.SortStableFunc(names, func(a, b string) int {
		_, ma := ind.has(a, MaintenanceRequired)
		_, mb := ind.has(b, MaintenanceRequired)
		switch {
		case ma && !mb:
			return -1
		case mb && !ma:
			return 1
		}
		return 0
	})
	for _, n := range names {
		s := hs(n)
		if s.Phase != Pending {
			continue
		}
		h, _ := pl.Inv.Host(n)
		wait := func(reason string) {
			out.Decisions = append(out.Decisions, Decision{Action: Wait, Host: n, Stage: stage, Reason: reason, Budget: pl.use(out.Used, n)})
		}
		if stop != "" {
			wait(stop)
			continue
		}
		if set := frozen(st, h); set != "" {
			wait(fmt.Sprintf("set %s frozen: host %s failed", set, st.Frozen[set]))
			continue
		}
		if set := closed(pl.Pol, h, now); set != "" {
			wait(fmt.Sprintf("set %s outside its maintenance window", set))
			continue
		}
		if ind.Down != "" {
			wait("blocked: indicators unknown: " + ind.Down)
			continue
		}
		if src, ok := ind.has(n, Blocked); ok {
			wait("blocked: " + src)
			continue
		}
		if src, ok := ind.has(n, Unavailable); ok {
			wait("unavailable: " + src)
			continue
		}
		if r, ok := held[n]; ok {
			wait("holds a slot through " + r)
			continue
		}
		if full := pl.full(out.Used, h); full != "" {
			wait(full)
			continue
		}
		for _, set := range h.Sets {
			out.Used[set]++
		}
		out.Decisions = append(out.Decisions, Decision{Action: Start, Host: n, Stage: stage, Step: s.Step + 1,
			Reason: fmt.Sprintf("stage %d, within budget", stage), Budget: pl.use(out.Used, n)})
	}
	return out
}

func frozen(st *State, h Host) string {
	for _, s := range h.Sets {
		if _, ok := st.Frozen[s]; ok {
			return s
		}
	}
	return ""
}

func closed(pol *Policy, h Host, now time.Time) string {
	for _, s := range h.Sets {
		if !pol.Open(s, now) {
			return s
		}
	}
	return ""
}

func (pl *Plan) full(used map[string]int, h Host) string {
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
