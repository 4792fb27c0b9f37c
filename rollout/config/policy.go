package config

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

// Policy says how a rollout moves: the canary colos first, each stage
// followed by a bake time, then waves; per-set budgets, cooldown, health
// gates, indicator sources, maintenance windows and the failure limit.
type Policy struct {
	// Interval between two evaluations (default 10s).
	Interval time.Duration `yaml:"interval" json:"interval"`
	// Mode is how a host takes the image: "in-place" (the default: its
	// agent syncs the running root) or "slot" (its agent writes the
	// inactive root slot, switches and reboots into it; the host is at
	// work until its trial boot commits; docs/slots.md).
	Mode string `yaml:"mode" json:"mode,omitempty"`
	// SlotDeadline bounds a slot host's sync, reboot and trial boot
	// together (default 30m).
	SlotDeadline time.Duration `yaml:"slot_deadline" json:"slot_deadline,omitempty"`
	Canary       struct {
		Colos []string      `yaml:"colos" json:"colos"`
		Bake  time.Duration `yaml:"bake" json:"bake"`
	} `yaml:"canary" json:"canary"`
	// Waves after the canary stage, each a cumulative share of the other
	// hosts: "1 per set", "5%", or a count. A last wave of 100 % is added
	// when missing.
	Waves []Wave `yaml:"waves" json:"waves"`
	// MaxUnavailable is every set's budget unless Sets says otherwise: a
	// count or a percentage of the set, at least 1 host (default "10%").
	MaxUnavailable string               `yaml:"max_unavailable" json:"max_unavailable"`
	Sets           map[string]SetPolicy `yaml:"sets" json:"sets,omitempty"`
	// Cooldown is how long a host keeps counting against its sets' budgets
	// after its health gates passed.
	Cooldown time.Duration `yaml:"cooldown" json:"cooldown"`
	Failures struct {
		// Limit: once more hosts than this have failed, the rollout halts.
		Limit int `yaml:"limit" json:"limit"`
		// Rollback a host whose sync or health gates failed.
		Rollback bool `yaml:"rollback" json:"rollback"`
	} `yaml:"failures" json:"failures"`
	Health struct {
		Deadline time.Duration `yaml:"deadline" json:"deadline"` // default 2m
		Gates    []Gate        `yaml:"gates" json:"gates,omitempty"`
	} `yaml:"health" json:"health"`
	Indicators IndicatorSources `yaml:"indicators" json:"indicators"`
	Windows    []Window         `yaml:"windows" json:"windows,omitempty"`
	// Blackouts are dates (YYYY-MM-DD, UTC) on which nothing starts.
	Blackouts []string `yaml:"blackouts" json:"blackouts,omitempty"`

	setBudget map[string]string
	blackout  map[string]bool
}

// The rollout modes (Policy.Mode).
const (
	ModeInPlace = "in-place"
	ModeSlot    = "slot"
)

// Wave is one step after the canary stage.
type Wave struct {
	Size string        `yaml:"size" json:"size"`
	Bake time.Duration `yaml:"bake" json:"bake"`
}

// SetPolicy overrides the policy for one set.
type SetPolicy struct {
	MaxUnavailable string `yaml:"max_unavailable" json:"max_unavailable"`
}

// Gate is one health check run after a host's sync; exactly one of its
// fields is set. "{host}" and "{addr}" (the agent address without port)
// are replaced by the host's.
type Gate struct {
	HTTP   string `yaml:"http" json:"http,omitempty"`     // URL that must answer 2xx
	TCP    string `yaml:"tcp" json:"tcp,omitempty"`       // host:port that must accept
	PromQL string `yaml:"promql" json:"promql,omitempty"` // expression that must return nothing
}

// IndicatorSources says where a host's indicators come from: firing alerts
// whose label or annotation KindKey names the kind and whose label
// HostLabel names the host.
type IndicatorSources struct {
	Prometheus   string        `yaml:"prometheus" json:"prometheus,omitempty"`
	Alertmanager string        `yaml:"alertmanager" json:"alertmanager,omitempty"`
	KindKey      string        `yaml:"kind_key" json:"kind_key,omitempty"`     // default ingot_indicator
	HostLabel    string        `yaml:"host_label" json:"host_label,omitempty"` // default host
	Timeout      time.Duration `yaml:"timeout" json:"timeout,omitempty"`       // default 5s
}

// Window is when hosts of some sets (all sets when none listed) may start.
type Window struct {
	Sets     []string `yaml:"sets" json:"sets,omitempty"`
	TimeZone string   `yaml:"timezone" json:"timezone"`
	Days     []string `yaml:"days" json:"days"`   // mon..sun; none: every day
	Hours    string   `yaml:"hours" json:"hours"` // "08:00-17:00"; empty: all day

	loc        *time.Location
	days       [7]bool
	from, till int // minutes of the day
}

// LoadPolicy reads a policy file and checks it against the inventory.
func LoadPolicy(name string, inv *Inventory) (*Policy, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	return ParsePolicy(name, b, inv)
}

// ParsePolicy parses policy contents; name names the file in errors.
func ParsePolicy(name string, b []byte, inv *Inventory) (*Policy, error) {
	var pol Policy
	d, err := decodeStrict(name, b, &pol)
	if err != nil {
		return nil, err
	}
	if err := pol.check(d, inv); err != nil {
		return nil, err
	}
	return &pol, nil
}

// check fills in the defaults and checks the policy against the
// inventory, reporting the first problem at its place in the document.
func (pol *Policy) check(d *doc, inv *Inventory) error {
	for _, step := range []func(*doc, *Inventory) error{pol.checkTiming, pol.checkStages, pol.checkGates, pol.checkCalendar} {
		if err := step(d, inv); err != nil {
			return err
		}
	}
	return nil
}

// checkTiming: interval, deadlines, mode and the indicators' defaults.
func (pol *Policy) checkTiming(d *doc, _ *Inventory) error {
	if pol.Interval == 0 {
		pol.Interval = 10 * time.Second
	}
	if pol.Interval < 0 {
		return d.errf(p("interval"), "negative interval")
	}
	if pol.Health.Deadline == 0 {
		pol.Health.Deadline = 2 * time.Minute
	}
	switch pol.Mode {
	case "":
		pol.Mode = ModeInPlace
	case ModeInPlace, ModeSlot:
	default:
		return d.errf(p("mode"), "mode %q: want %s or %s", pol.Mode, ModeInPlace, ModeSlot)
	}
	if pol.SlotDeadline < 0 {
		return d.errf(p("slot_deadline"), "negative slot_deadline")
	}
	if pol.SlotDeadline == 0 {
		pol.SlotDeadline = 30 * time.Minute
	}
	if pol.Indicators.KindKey == "" {
		pol.Indicators.KindKey = "ingot_indicator"
	}
	if pol.Indicators.HostLabel == "" {
		pol.Indicators.HostLabel = "host"
	}
	if pol.Indicators.Timeout == 0 {
		pol.Indicators.Timeout = 5 * time.Second
	}
	return nil
}

// checkStages: the failure limit, cooldown and bakes, the canary colos,
// the waves and the budgets of unavailable hosts.
func (pol *Policy) checkStages(d *doc, inv *Inventory) error {
	if pol.Failures.Limit < 0 {
		return d.errf(p("failures", "limit"), "negative failure limit")
	}
	if pol.Cooldown < 0 || pol.Canary.Bake < 0 {
		return d.errf(nil, "negative cooldown or bake")
	}
	colos := inv.Colos()
	for i, c := range pol.Canary.Colos {
		if !slices.Contains(colos, c) {
			return d.errf(p("canary", "colos", i), "canary colo %q has no hosts in the inventory (colos: %s)", c, strings.Join(colos, ", "))
		}
	}
	for i, w := range pol.Waves {
		if _, err := ParseWave(w.Size, 100); err != nil {
			return d.errf(p("waves", i, "size"), "wave %d: %v", i+1, err)
		}
		if w.Bake < 0 {
			return d.errf(p("waves", i, "bake"), "wave %d: negative bake", i+1)
		}
	}
	if pol.MaxUnavailable == "" {
		pol.MaxUnavailable = "10%"
	}
	if _, err := budget(pol.MaxUnavailable, 100); err != nil {
		return d.errf(p("max_unavailable"), "max_unavailable: %v", err)
	}
	pol.setBudget = map[string]string{}
	for s, sp := range pol.Sets {
		if len(inv.SetHosts(s)) == 0 {
			return d.errf(p("sets", s), "set %q is not in the inventory", s)
		}
		if _, err := budget(sp.MaxUnavailable, 100); err != nil {
			return d.errf(p("sets", s, "max_unavailable"), "set %s: max_unavailable: %v", s, err)
		}
		pol.setBudget[s] = sp.MaxUnavailable
	}
	return nil
}

// checkGates: each health gate is one check that parses, each indicator
// source an http(s) URL.
func (pol *Policy) checkGates(d *doc, _ *Inventory) error {
	for i, g := range pol.Health.Gates {
		n := 0
		for _, v := range []string{g.HTTP, g.TCP, g.PromQL} {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			return d.errf(p("health", "gates", i), "health gate %d: give exactly one of http, tcp, promql", i+1)
		}
		if g.PromQL != "" {
			expr := GateVars("x", "x").Replace(g.PromQL)
			if _, err := parser.NewParser(parser.Options{}).ParseExpr(expr); err != nil {
				return d.errf(p("health", "gates", i, "promql"), "health gate %d: PromQL %q does not parse: %v", i+1, g.PromQL, err)
			}
		}
	}
	for _, u := range []string{pol.Indicators.Prometheus, pol.Indicators.Alertmanager} {
		if u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return d.errf(p("indicators"), "indicator source %q is not an http(s) URL", u)
		}
	}
	return nil
}

// checkCalendar: maintenance windows (of sets in the inventory, not
// overlapping) and blackout dates.
func (pol *Policy) checkCalendar(d *doc, inv *Inventory) error {
	for i := range pol.Windows {
		if err := pol.Windows[i].parse(); err != nil {
			return d.errf(p("windows", i), "window %d: %v", i+1, err)
		}
		for _, s := range pol.Windows[i].Sets {
			if len(inv.SetHosts(s)) == 0 {
				return d.errf(p("windows", i, "sets"), "window %d: set %q is not in the inventory", i+1, s)
			}
		}
		for j := range i {
			if pol.Windows[j].overlaps(&pol.Windows[i]) {
				return d.errf(p("windows", i), "window %d overlaps window %d (%s) for the same sets", i+1, j+1, d.at("windows", j))
			}
		}
	}
	pol.blackout = map[string]bool{}
	for i, b := range pol.Blackouts {
		if _, err := time.Parse(time.DateOnly, b); err != nil {
			return d.errf(p("blackouts", i), "blackout %q is not a date YYYY-MM-DD", b)
		}
		pol.blackout[b] = true
	}
	return nil
}

// GateVars replaces "{host}" and "{addr}" in a gate by a host's name and
// its agent's address without the port.
func GateVars(host, addr string) *strings.Replacer {
	return strings.NewReplacer("{host}", host, "{addr}", addr)
}

// budget resolves a max_unavailable for a set of size hosts.
func budget(s string, size int) (int, error) {
	if pct, ok := strings.CutSuffix(strings.TrimSpace(s), "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a percentage", s)
		}
		if f <= 0 || f > 100 {
			return 0, fmt.Errorf("%q: want more than 0 %% and at most 100 %%", s)
		}
		return max(1, int(math.Floor(f*float64(size)/100))), nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is neither a count nor a percentage", s)
	}
	if n <= 0 {
		return 0, fmt.Errorf("%q: a set must allow at least 1 host", s)
	}
	return n, nil
}

// Budget is how many hosts of set (of size hosts) may be unavailable.
func (pol *Policy) Budget(set string, size int) int {
	s := pol.MaxUnavailable
	if v, ok := pol.setBudget[set]; ok {
		s = v
	}
	n, err := budget(s, size)
	if err != nil { // checked when parsed
		return 1
	}
	return n
}

// ParseWave resolves a wave size against n hosts: the cumulative number
// of hosts the wave reaches, or -1 for "1 per set".
func ParseWave(s string, n int) (int, error) {
	s = strings.TrimSpace(s)
	if s == "1 per set" {
		return -1, nil
	}
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		if err != nil || f <= 0 || f > 100 {
			return 0, fmt.Errorf("size %q: want a percentage above 0 and at most 100", s)
		}
		return int(math.Ceil(f * float64(n) / 100)), nil
	}
	c, err := strconv.Atoi(s)
	if err != nil || c <= 0 {
		return 0, fmt.Errorf("size %q: want \"1 per set\", a percentage or a positive count", s)
	}
	return min(c, n), nil
}

var weekdays = map[string]time.Weekday{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

func (w *Window) parse() error {
	tz := w.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return fmt.Errorf("time zone %q: %v", tz, err)
	}
	w.loc = loc
	if len(w.Days) == 0 {
		w.days = [7]bool{true, true, true, true, true, true, true}
	}
	for _, d := range w.Days {
		wd, ok := weekdays[strings.ToLower(d)]
		if !ok {
			return fmt.Errorf("day %q: want mon, tue, wed, thu, fri, sat or sun", d)
		}
		w.days[wd] = true
	}
	w.from, w.till = 0, 24*60
	if w.Hours != "" {
		a, b, ok := strings.Cut(w.Hours, "-")
		if !ok {
			return fmt.Errorf("hours %q: want HH:MM-HH:MM", w.Hours)
		}
		from, err1 := clock(a)
		till, err2 := clock(b)
		if err1 != nil || err2 != nil || from >= till {
			return fmt.Errorf("hours %q: want HH:MM-HH:MM with the start before the end", w.Hours)
		}
		w.from, w.till = from, till
	}
	return nil
}

func clock(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		if strings.TrimSpace(s) == "24:00" {
			return 24 * 60, nil
		}
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

func (w *Window) appliesTo(set string) bool { return len(w.Sets) == 0 || slices.Contains(w.Sets, set) }

// overlaps says whether two windows cover a common set, weekday and
// minute (windows in different time zones are compared as given).
func (w *Window) overlaps(o *Window) bool {
	common := len(w.Sets) == 0 || len(o.Sets) == 0
	for _, s := range w.Sets {
		common = common || slices.Contains(o.Sets, s)
	}
	if !common {
		return false
	}
	day := false
	for i := range w.days {
		day = day || (w.days[i] && o.days[i])
	}
	return day && w.from < o.till && o.from < w.till
}

func (w *Window) open(t time.Time) bool {
	t = t.In(w.loc)
	m := t.Hour()*60 + t.Minute()
	return w.days[t.Weekday()] && m >= w.from && m < w.till
}

// Open says whether hosts of set may start at t: no blackout that day and,
// when windows apply to the set, inside one of them.
func (pol *Policy) Open(set string, t time.Time) bool {
	if pol.blackout[t.UTC().Format(time.DateOnly)] {
		return false
	}
	any := false
	for i := range pol.Windows {
		w := &pol.Windows[i]
		if !w.appliesTo(set) {
			continue
		}
		any = true
		if w.open(t) {
			return true
		}
	}
	return !any
}
