package agent

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ingotfleet/ingot/internal/glob"
)

// SlotsConfig is the "slots" section of the agent's config: two root
// slots, of which one is booted and the other is written by slot syncs
// (package pusher/slots does the work).
type SlotsConfig struct {
	A SlotConfig `yaml:"a"`
	B SlotConfig `yaml:"b"`
	// StateDir holds which slot is the default, which is on trial, the
	// image of each and the failed attempts. Both slots must see it: on
	// a real host it is on the data partition (not the agent's
	// state directory would follow the booted slot, so it is required).
	StateDir string `yaml:"state_dir"`
	// Keep are absolute paths no slot operation ever touches (the data
	// partition's mount points: /vz, /srv, …); they are also never
	// copied into a slot.
	Keep []string `yaml:"keep"`
	// Carry are globs (relative to the root) copied verbatim from the
	// booted slot into the new one (default DefaultCarry).
	Carry []string `yaml:"carry"`
	// EtcPolicies say what to do with an /etc path changed both on the
	// host and in the new image; the first glob that matches wins.
	EtcPolicies []EtcPolicy `yaml:"etc_policies"`
	// EtcDefault is the policy for other conflicting paths (default
	// "fail": nothing is overwritten silently).
	EtcDefault string `yaml:"etc_default"`
	// SnapshotDir keeps the configuration snapshots (default
	// STATE_DIR/snapshots).
	SnapshotDir string     `yaml:"snapshot_dir"`
	Boot        BootConfig `yaml:"boot"`
	// Reboot is the command that restarts the host after a switch, a
	// rollback or a failed trial (e.g. [systemctl, reboot]); unset, the
	// agent only sets the bootloader and an operator reboots.
	Reboot []string `yaml:"reboot"`
	// Kexec: a switch to a slot whose kernel is the running one starts
	// it with kexec, skipping firmware and bootloader (Debian
	// kexec-tools; device slots); otherwise it goes through the
	// bootloader.
	Kexec  bool `yaml:"kexec"`
	Health struct {
		// Deadline bounds a trial boot: if the checks have not passed
		// this long after the agent started, the trial fails (default 5m).
		Deadline time.Duration `yaml:"deadline"`
		Checks   []HealthCheck `yaml:"checks"`
	} `yaml:"health"`

	base string // the config file's directory
}

// SlotConfig is one root slot: a directory (tests, containers) or a block
// device mounted under the state directory while it is written.
type SlotConfig struct {
	Dir    string `yaml:"dir"`
	Device string `yaml:"device"`
	FSType string `yaml:"fstype"` // default ext4
}

// BootConfig chooses the bootloader backend.
type BootConfig struct {
	// Type is "file" (a plain file: directory slots, tests), "grub" or
	// "systemd-boot".
	Type string `yaml:"type"`
	// File is the state file of the "file" backend.
	File string `yaml:"file"`
	// GrubEnv is the grubenv file (default /boot/grub/grubenv).
	GrubEnv string `yaml:"grubenv"`
	// ESP is the EFI system partition's mount point (systemd-boot;
	// default /boot/efi).
	ESP string `yaml:"esp"`
	// EFIVars is efivarfs (default /sys/firmware/efi/efivars).
	EFIVars string `yaml:"efivars"`
	// Tries a new slot gets before the bootloader gives up on it
	// (systemd-boot boot counting; default 1).
	Tries int `yaml:"tries"`
	// Cmdline is the kernel command line file telling which slot booted
	// (default /proc/cmdline, which holds ingot.slot=a or b).
	Cmdline string `yaml:"cmdline"`
}

// HealthCheck is one check a trial boot must pass: an HTTP GET answered
// 2xx, a TCP connect, or a command exiting 0.
type HealthCheck struct {
	Name    string        `yaml:"name"`
	HTTP    string        `yaml:"http"`
	TCP     string        `yaml:"tcp"`
	Command []string      `yaml:"command"`
	Timeout time.Duration `yaml:"timeout"`
}

// EtcPolicy is a per-path policy of the /etc merge.
type EtcPolicy struct {
	Path   string `yaml:"path"`
	Policy string `yaml:"policy"`
}

// The /etc merge policies.
const (
	PolicyKeepHost  = "keep-host"
	PolicyTakeImage = "take-image"
	PolicyMerge     = "merge-lines"
	PolicyFail      = "fail"
)

// DefaultCarry are the host's own files copied from the booted slot into
// a new one.
var DefaultCarry = []string{
	"etc/hostname", "etc/hosts", "etc/machine-id", "etc/resolv.conf",
	"etc/ssh/ssh_host_*", "etc/ingot/**", "root/.ssh/**", "var/lib/systemd/random-seed",
}

func (c *SlotsConfig) validate(base string) error {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	for _, s := range []*SlotConfig{&c.A, &c.B} {
		abs(&s.Dir)
		if (s.Dir == "") == (s.Device == "") {
			return fmt.Errorf("slots: each of a and b needs exactly one of dir and device")
		}
		if s.FSType == "" {
			s.FSType = "ext4"
		}
	}
	abs(&c.StateDir)
	abs(&c.SnapshotDir)
	abs(&c.Boot.File)
	if c.StateDir == "" {
		return fmt.Errorf("slots: state_dir is not set: it must be a directory both slots see (on the data partition)")
	}
	if c.SnapshotDir == "" {
		c.SnapshotDir = filepath.Join(c.StateDir, "snapshots")
	}
	for _, k := range c.Keep {
		if !filepath.IsAbs(k) {
			return fmt.Errorf("slots: keep: %q is not an absolute path", k)
		}
	}
	if c.Carry == nil {
		c.Carry = DefaultCarry
	}
	if _, err := glob.CompileSet(c.Carry); err != nil {
		return fmt.Errorf("slots: carry: %w", err)
	}
	if c.EtcDefault == "" {
		c.EtcDefault = PolicyFail
	}
	okPolicy := func(p string) bool {
		switch p {
		case PolicyKeepHost, PolicyTakeImage, PolicyMerge, PolicyFail:
			return true
		}
		return false
	}
	if !okPolicy(c.EtcDefault) {
		return fmt.Errorf("slots: etc_default: unknown policy %q", c.EtcDefault)
	}
	for _, p := range c.EtcPolicies {
		if !okPolicy(p.Policy) {
			return fmt.Errorf("slots: etc_policies: %s: unknown policy %q (want %s, %s, %s or %s)", p.Path, p.Policy, PolicyKeepHost, PolicyTakeImage, PolicyMerge, PolicyFail)
		}
		if _, err := glob.CompileSet([]string{p.Path}); err != nil {
			return fmt.Errorf("slots: etc_policies: %w", err)
		}
	}
	switch c.Boot.Type {
	case "file":
		if c.Boot.File == "" {
			c.Boot.File = filepath.Join(c.StateDir, "boot.json")
		}
	case "grub", "systemd-boot":
	default:
		return fmt.Errorf("slots: boot: type %q: want file, grub or systemd-boot", c.Boot.Type)
	}
	if c.Boot.Tries <= 0 {
		c.Boot.Tries = 1
	}
	if c.Health.Deadline <= 0 {
		c.Health.Deadline = 5 * time.Minute
	}
	for i, h := range c.Health.Checks {
		n := 0
		for _, set := range []bool{h.HTTP != "", h.TCP != "", len(h.Command) > 0} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("slots: health check %d (%s): give exactly one of http, tcp, command", i, h.Name)
		}
		if h.HTTP != "" && !strings.HasPrefix(h.HTTP, "http://") && !strings.HasPrefix(h.HTTP, "https://") {
			return fmt.Errorf("slots: health check %s: http wants an http(s):// URL", h.Name)
		}
	}
	return nil
}
