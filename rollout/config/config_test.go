package config

import (
	"strings"
	"testing"
	"time"
)

const testInventory = `hosts:
  - {name: a1, addr: "10.0.0.1:7443", colo: ams, sets: [web]}
  - {name: a2, addr: "10.0.0.2:7443", colo: ams, sets: [web]}
  - {name: b1, addr: "10.0.1.1:7443", colo: fra, sets: [web, db]}
  - {name: b2, addr: "10.0.1.2:7443", colo: fra, sets: [db]}
`

func mustInventory(t *testing.T, s string) *Inventory {
	t.Helper()
	inv, err := ParseInventory("inv.yaml", []byte(s))
	if err != nil {
		t.Fatalf("ParseInventory: %v", err)
	}
	return inv
}

func TestInventory(t *testing.T) {
	inv := mustInventory(t, testInventory)
	if got := strings.Join(inv.SetNames(), ","); got != "db,web" {
		t.Errorf("sets = %s, want db,web", got)
	}
	if got := strings.Join(inv.SetHosts("web"), ","); got != "a1,a2,b1" {
		t.Errorf("web = %s", got)
	}
	if got := strings.Join(inv.Colos(), ","); got != "ams,fra" {
		t.Errorf("colos = %s", got)
	}
	derived := mustInventory(t, `set_by: [cluster, role]
hosts:
  - {name: k1, addr: "h:1", colo: c, labels: {cluster: one, role: worker}}
  - {name: k2, addr: "h:2", colo: c, labels: {cluster: one, role: worker}}
  - {name: k3, addr: "h:3", colo: c, labels: {cluster: two, role: worker}, sets: [extra]}
`)
	if got := strings.Join(derived.SetNames(), "|"); got != "cluster=one,role=worker|cluster=two,role=worker|extra" {
		t.Errorf("derived sets = %s", got)
	}
	hostsFile := mustInventory(t, "# comment\nweb1 10.0.0.1:7443\n10.0.0.2:7443\n")
	if len(hostsFile.Hosts) != 2 || hostsFile.Hosts[1].Name != "10.0.0.2:7443" || hostsFile.SetHosts("all") == nil {
		t.Errorf("hosts file read as %+v", hostsFile.Hosts)
	}
}

func TestPolicy(t *testing.T) {
	inv := mustInventory(t, testInventory)
	pol, err := ParsePolicy("pol.yaml", []byte(`
canary: {colos: [ams], bake: 10m}
waves: [{size: 1 per set, bake: 5m}, {size: 50%}]
max_unavailable: 50%
sets: {db: {max_unavailable: 2}}
cooldown: 1m
health:
  gates:
    - promql: 'up{instance="{host}"} == 0'
    - tcp: "{addr}:22"
windows:
  - {sets: [web], timezone: Europe/Amsterdam, days: [mon, tue], hours: "08:00-17:00"}
  - {sets: [web], timezone: Europe/Amsterdam, days: [wed]}
blackouts: ["2026-12-24"]
`), inv)
	if err != nil {
		t.Fatal(err)
	}
	if pol.Interval != 10*time.Second || pol.Indicators.KindKey != "ingot_indicator" || pol.Health.Deadline != 2*time.Minute {
		t.Errorf("defaults not applied: %+v", pol)
	}
	for _, c := range []struct {
		set  string
		size int
		want int
	}{{"web", 3, 1}, {"web", 10, 5}, {"db", 2, 2}, {"db", 40, 2}} {
		if got := pol.Budget(c.set, c.size); got != c.want {
			t.Errorf("Budget(%s, %d) = %d, want %d", c.set, c.size, got, c.want)
		}
	}
	ams, _ := time.LoadLocation("Europe/Amsterdam")
	for _, c := range []struct {
		set  string
		t    time.Time
		want bool
	}{
		{"web", time.Date(2026, 12, 7, 9, 0, 0, 0, ams), true},        // Monday
		{"web", time.Date(2026, 12, 7, 17, 0, 0, 0, ams), false},      // Monday, closed
		{"web", time.Date(2026, 12, 9, 23, 0, 0, 0, ams), true},       // Wednesday, all day
		{"web", time.Date(2026, 12, 10, 9, 0, 0, 0, ams), false},      // Thursday
		{"db", time.Date(2026, 12, 10, 9, 0, 0, 0, ams), true},        // no window for db
		{"db", time.Date(2026, 12, 24, 12, 0, 0, 0, time.UTC), false}, // blackout
	} {
		if got := pol.Open(c.set, c.t); got != c.want {
			t.Errorf("Open(%s, %v) = %v, want %v", c.set, c.t, got, c.want)
		}
	}
}

func TestBadInput(t *testing.T) {
	inv := mustInventory(t, testInventory)
	for _, c := range []struct {
		name, inv, pol string
		want           string // substring of the error, with file:line
	}{
		{name: "duplicate host", inv: "hosts:\n  - {name: a, addr: \"h:1\", colo: c, sets: [s]}\n  - {name: a, addr: \"h:2\", colo: c, sets: [s]}\n",
			want: "inv.yaml:3: host a listed twice (first at inv.yaml:2)"},
		{name: "host in no set", inv: "hosts:\n  - {name: a, addr: \"h:1\", colo: c, sets: [s]}\n  - {name: b, addr: \"h:2\", colo: c}\n",
			want: "inv.yaml:3: host b is in no set"},
		{name: "missing label for set_by", inv: "set_by: [role]\nhosts:\n  - name: a\n    addr: \"h:1\"\n    colo: c\n",
			want: "inv.yaml:3: host a has no label \"role\""},
		{name: "unknown inventory key", inv: "hosts:\n  - {name: a, addr: \"h:1\", colo: c, sets: [s], rack: 4}\n",
			want: "inv.yaml:2: field rack not found"},
		{name: "address without port", inv: "hosts:\n  - name: a\n    addr: h\n    colo: c\n    sets: [s]\n",
			want: "inv.yaml:3: host a: address \"h\" has no port"},
		{name: "max_unavailable 0", pol: "cooldown: 1m\nmax_unavailable: 0\n",
			want: "pol.yaml:2: max_unavailable: \"0\": a set must allow at least 1 host"},
		{name: "max_unavailable over 100%", pol: "sets:\n  web:\n    max_unavailable: 120%\n",
			want: "pol.yaml:3: set web: max_unavailable: \"120%\": want more than 0 % and at most 100 %"},
		{name: "unknown set", pol: "sets:\n  nosuch: {max_unavailable: 1}\n",
			want: "pol.yaml:2: set \"nosuch\" is not in the inventory"},
		{name: "bad promql", pol: "health:\n  gates:\n    - http: http://x/\n    - promql: 'up{instance=\"{host}\" == 0'\n",
			want: "pol.yaml:4: health gate 2: PromQL"},
		{name: "two kinds in a gate", pol: "health:\n  gates:\n    - {http: \"http://x/\", tcp: \"x:1\"}\n",
			want: "pol.yaml:3: health gate 1: give exactly one"},
		{name: "overlapping window", pol: "windows:\n  - {days: [mon, tue], hours: \"08:00-12:00\"}\n  - {sets: [db], days: [tue], hours: \"11:00-13:00\"}\n",
			want: "pol.yaml:3: window 2 overlaps window 1 (pol.yaml:2)"},
		{name: "bad hours", pol: "windows:\n  - {hours: \"17:00-08:00\"}\n",
			want: "pol.yaml:2: window 1: hours \"17:00-08:00\""},
		{name: "unknown policy key", pol: "canary:\n  colos: [ams]\n  bake_time: 5m\n",
			want: "pol.yaml:3: field bake_time not found"},
		{name: "unknown canary colo", pol: "canary:\n  colos: [ams, lon]\n",
			want: "pol.yaml:2: canary colo \"lon\" has no hosts"},
		{name: "bad wave", pol: "waves:\n  - size: 1 per set\n  - size: 0%\n",
			want: "pol.yaml:3: wave 2: size \"0%\""},
		{name: "bad duration", pol: "cooldown: soon\n",
			want: "pol.yaml:1:"},
		{name: "unknown mode", pol: "interval: 5s\nmode: a-b\n",
			want: "pol.yaml:2: mode \"a-b\": want in-place or slot"},
		{name: "negative slot deadline", pol: "mode: slot\nslot_deadline: -1m\n",
			want: "pol.yaml:2: negative slot_deadline"},
		{name: "bad blackout", pol: "blackouts: [\"24.12.2026\"]\n",
			want: "pol.yaml:1: blackout \"24.12.2026\" is not a date"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			if c.inv != "" {
				_, err = ParseInventory("inv.yaml", []byte(c.inv))
			} else {
				_, err = ParsePolicy("pol.yaml", []byte(c.pol), inv)
			}
			if err == nil {
				t.Fatalf("accepted; want an error with %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, c.want)
			}
		})
	}
}
