package boot

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ingotfleet/ingot/internal/atomicfile"
	"github.com/ingotfleet/ingot/pusher/agent"
)

// The two slots.
const (
	A = "a"
	B = "b"
)

// Other is the slot that is not s.
func Other(s string) string {
	if s == A {
		return B
	}
	return A
}

func validSlot(s string) error {
	if s != A && s != B {
		return fmt.Errorf("slots: unknown slot %q (want a or b)", s)
	}
	return nil
}

// Boot is the bootloader as the agent sees it.
type Boot interface {
	// Booted is the slot the running system started from.
	Booted() (string, error)
	// Default is the slot started when nothing else is asked.
	Default() (string, error)
	// TryNext makes the next boot, and only that one, start slot: the
	// boot after it returns to the default without anyone's help.
	TryNext(slot string) error
	// SetDefault makes slot the default and drops a pending TryNext.
	SetDefault(slot string) error
}

// New makes the backend the config names.
func New(c *agent.BootConfig) (Boot, error) {
	switch c.Type {
	case "file":
		return &FileBoot{Path: c.File}, nil
	case "grub":
		g := &GrubBoot{Env: c.GrubEnv, Cmdline: c.Cmdline}
		return g, nil
	case "systemd-boot":
		return &SystemdBoot{ESP: c.ESP, EFIVars: c.EFIVars, Tries: c.Tries, Cmdline: c.Cmdline}, nil
	}
	return nil, fmt.Errorf("slots: unknown boot type %q", c.Type)
}

// cmdlineSlot reads ingot.slot= from a kernel command line file.
func cmdlineSlot(name string) (string, error) {
	if name == "" {
		name = "/proc/cmdline"
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "ingot.slot="); ok {
			return v, validSlot(v)
		}
	}
	return "", fmt.Errorf("slots: %s has no ingot.slot=a|b: the boot entries must name their slot", name)
}

// FileBoot keeps the bootloader's state in a JSON file: the backend of
// directory slots and tests, where Boot (the "firmware") is called by
// whoever restarts the host.
type FileBoot struct{ Path string }

type fileBootState struct {
	Default string `json:"default"`
	Next    string `json:"next,omitempty"`
	Booted  string `json:"booted"`
	Boots   int    `json:"boots"`
}

func (f *FileBoot) load() (fileBootState, error) {
	var s fileBootState
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return fileBootState{Default: A, Booted: A}, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", f.Path, err)
	}
	return s, nil
}

func (f *FileBoot) save(s fileBootState) error {
	b, _ := json.Marshal(s)
	return atomicfile.WriteFile(f.Path, append(b, '\n'), 0o600)
}

func (f *FileBoot) Booted() (string, error) {
	s, err := f.load()
	return s.Booted, err
}

func (f *FileBoot) Default() (string, error) {
	s, err := f.load()
	return s.Default, err
}

// Next is the slot a pending TryNext starts at the next boot ("" when
// none is pending).
func (f *FileBoot) Next() (string, error) {
	s, err := f.load()
	return s.Next, err
}

func (f *FileBoot) TryNext(slot string) error {
	if err := validSlot(slot); err != nil {
		return err
	}
	s, err := f.load()
	if err != nil {
		return err
	}
	s.Next = slot
	return f.save(s)
}

func (f *FileBoot) SetDefault(slot string) error {
	if err := validSlot(slot); err != nil {
		return err
	}
	s, err := f.load()
	if err != nil {
		return err
	}
	s.Default, s.Next = slot, ""
	return f.save(s)
}

// Boot is the firmware and bootloader of a FileBoot host: it picks the
// slot to start (the one-shot, consumed, else the default), records it
// as booted and returns it.
func (f *FileBoot) Boot() (string, error) {
	s, err := f.load()
	if err != nil {
		return "", err
	}
	s.Booted = s.Default
	if s.Next != "" {
		s.Booted, s.Next = s.Next, ""
	}
	s.Boots++
	return s.Booted, f.save(s)
}
