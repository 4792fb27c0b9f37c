package config

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/ingotfleet/ingot/agentclient"
)

// Host is one machine in the inventory.
type Host struct {
	Name   string            `yaml:"name" json:"name"`
	Addr   string            `yaml:"addr" json:"addr"` // host:port of the agent's API
	Colo   string            `yaml:"colo" json:"colo"`
	Sets   []string          `yaml:"sets" json:"sets,omitempty"`
	Labels map[string]string `yaml:"labels" json:"labels,omitempty"`
}

// Inventory is the fleet: hosts, the colos they stand in and the sets of
// interchangeable hosts they belong to. A host's sets are those it lists
// plus the one derived from its labels when SetBy names label keys
// (set "cluster=k1,role=web" for set_by [cluster, role]).
type Inventory struct {
	SetBy []string `yaml:"set_by" json:"set_by,omitempty"`
	Hosts []Host   `yaml:"hosts" json:"hosts"`

	byName map[string]int
	sets   map[string][]string // set -> host names, in inventory order
}

// LoadInventory reads an inventory file. A file that is not YAML (no
// "hosts:" key) is read as a pusher hosts file ("NAME ADDR" a line): each
// host then stands in colo "default" and set "all".
func LoadInventory(name string) (*Inventory, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading inventory: %w", err)
	}
	return ParseInventory(name, b)
}

// ParseInventory parses inventory contents; name names the file in errors.
func ParseInventory(name string, b []byte) (*Inventory, error) {
	if !bytes.Contains(b, []byte("hosts:")) {
		hs, err := agentclient.ParseHosts(name, bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		inv := &Inventory{}
		for _, h := range hs {
			inv.Hosts = append(inv.Hosts, Host{Name: h.Name, Addr: h.Addr, Colo: "default", Sets: []string{"all"}})
		}
		return inv, inv.index(nil)
	}
	var inv Inventory
	d, err := decodeStrict(name, b, &inv)
	if err != nil {
		return nil, err
	}
	return &inv, inv.index(d)
}

func (inv *Inventory) index(d *doc) error {
	if d == nil {
		d = &doc{name: "inventory"}
	}
	if len(inv.Hosts) == 0 {
		return d.errf(p("hosts"), "no hosts")
	}
	inv.byName = map[string]int{}
	inv.sets = map[string][]string{}
	for i := range inv.Hosts {
		h := &inv.Hosts[i]
		at := p("hosts", i)
		switch {
		case h.Name == "":
			return d.errf(at, "host without a name")
		case strings.ContainsAny(h.Name, " \t/"):
			return d.errf(p("hosts", i, "name"), "host name %q has a space or slash", h.Name)
		case h.Addr == "":
			return d.errf(at, "host %s has no addr", h.Name)
		case !strings.Contains(h.Addr, ":"):
			return d.errf(p("hosts", i, "addr"), "host %s: address %q has no port", h.Name, h.Addr)
		case h.Colo == "":
			return d.errf(at, "host %s has no colo", h.Name)
		}
		if j, dup := inv.byName[h.Name]; dup {
			return d.errf(p("hosts", i, "name"), "host %s listed twice (first at %s)", h.Name, d.at("hosts", j))
		}
		inv.byName[h.Name] = i
		if len(inv.SetBy) > 0 {
			var parts []string
			for _, k := range inv.SetBy {
				v, ok := h.Labels[k]
				if !ok {
					return d.errf(at, "host %s has no label %q named by set_by", h.Name, k)
				}
				parts = append(parts, k+"="+v)
			}
			h.Sets = append(h.Sets, strings.Join(parts, ","))
		}
		if len(h.Sets) == 0 {
			return d.errf(at, "host %s is in no set (give it sets: or labels for set_by:)", h.Name)
		}
		seen := map[string]bool{}
		for _, s := range h.Sets {
			if s == "" || seen[s] {
				return d.errf(p("hosts", i, "sets"), "host %s: empty or repeated set %q", h.Name, s)
			}
			seen[s] = true
			inv.sets[s] = append(inv.sets[s], h.Name)
		}
	}
	return nil
}

// Host returns the named host.
func (inv *Inventory) Host(name string) (Host, bool) {
	i, ok := inv.byName[name]
	if !ok {
		return Host{}, false
	}
	return inv.Hosts[i], true
}

// SetNames lists the sets, sorted.
func (inv *Inventory) SetNames() []string {
	var s []string
	for k := range inv.sets {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// SetHosts lists the hosts of a set in inventory order.
func (inv *Inventory) SetHosts(set string) []string { return inv.sets[set] }

// Colos lists the colos, sorted.
func (inv *Inventory) Colos() []string {
	var c []string
	for _, h := range inv.Hosts {
		if !slices.Contains(c, h.Colo) {
			c = append(c, h.Colo)
		}
	}
	sort.Strings(c)
	return c
}
