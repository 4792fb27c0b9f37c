package slots

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ingotfleet/ingot/internal/atomicfile"
	"github.com/ingotfleet/ingot/pusher/slots/boot"
	"github.com/ingotfleet/ingot/pusher/slots/carry"
)

// State is what the agent remembers about the slots (STATE_DIR/state.json).
type State struct {
	// Default is the committed slot: the bootloader starts it when
	// nothing else is asked ("" until the first commit or switch).
	Default string                `json:"default,omitempty"`
	Slots   map[string]*SlotState `json:"slots"`
	// Trial is the switch waiting for its first healthy boot.
	Trial *Trial `json:"trial,omitempty"`
	// Attempts are the switches that failed, newest last (at most 20).
	Attempts []Attempt `json:"attempts,omitempty"`
	// LastSwitch is the last switch that came up healthy.
	LastSwitch *Switched `json:"last_switch,omitempty"`
	// Switches counts the switches (and rollbacks) ever made: each
	// trial, and what came of it, carries its number, so a controller
	// can tell its own switch from earlier ones.
	Switches int `json:"switches,omitempty"`
}

// SlotState is one slot's contents.
type SlotState struct {
	// Image is the image the slot holds; "" while a sync writes it or
	// after one failed (the slot cannot be booted into).
	Image string `json:"image,omitempty"`
	// Writing is the image a slot sync is writing (set before the
	// first change, cleared when the slot is ready).
	Writing string `json:"writing,omitempty"`
	// Base is the image the /etc merge took as its base.
	Base     string    `json:"base,omitempty"`
	SyncedAt time.Time `json:"synced_at,omitzero"`
	// Report is the carry-over report of the last slot sync.
	Report *carry.Report `json:"report,omitempty"`
}

// Trial is a switch to Slot (from From) not yet committed.
type Trial struct {
	N     int       `json:"n,omitempty"` // its number (State.Switches)
	Slot  string    `json:"slot"`
	From  string    `json:"from"`
	Image string    `json:"image,omitempty"`
	Since time.Time `json:"since"`
	// Rollback: the switch returns to a slot that ran before.
	Rollback bool `json:"rollback,omitempty"`
	// Armed: the bootloader was told, or the kernel loaded for kexec (a
	// trial not armed never happened).
	Armed bool `json:"armed,omitempty"`
	// Kexec: the slot is started by kexec; the bootloader was not told,
	// so any boot through the firmware starts the default slot.
	Kexec bool `json:"kexec,omitempty"`
}

// Attempt is a switch that did not come up healthy.
type Attempt struct {
	N      int       `json:"n,omitempty"` // the trial's number
	Slot   string    `json:"slot"`
	Image  string    `json:"image,omitempty"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// Switched records a switch that came up healthy and its downtime: from
// the switch (just before the reboot) to the checks passing.
type Switched struct {
	N        int       `json:"n,omitempty"` // the trial's number
	From     string    `json:"from"`
	To       string    `json:"to"`
	At       time.Time `json:"at"`
	Healthy  time.Time `json:"healthy"`
	Downtime float64   `json:"downtime_seconds"`
	// Kernel is when the new slot's kernel started (the clock less the
	// time since boot) and Agent when its agent started, when known; with
	// them Phases splits the downtime, so a long one says where it went.
	Kernel time.Time `json:"kernel,omitzero"`
	Agent  time.Time `json:"agent,omitzero"`
	Phases *Phases   `json:"phases,omitempty"`
}

// Phases is a downtime in three parts. A negative part means the two
// slots' clocks disagree (a wrong hardware clock, or one stepped by NTP
// between the switch and the commit): the downtime is then wrong by as
// much.
type Phases struct {
	// Down: the switch to the new kernel's start — the old slot's
	// shutdown, then firmware and bootloader (kexec: none).
	Down float64 `json:"down_seconds"`
	// Boot: the kernel's start to the agent's (kernel, initramfs, init).
	Boot float64 `json:"boot_seconds"`
	// Checks: the agent's start to the health checks passing.
	Checks float64 `json:"checks_seconds"`
}

func (s *Switched) phases() {
	if s.Kernel.IsZero() || s.Agent.IsZero() {
		return
	}
	sec := func(a, b time.Time) float64 { return b.Sub(a).Seconds() }
	s.Phases = &Phases{Down: sec(s.At, s.Kernel), Boot: sec(s.Kernel, s.Agent), Checks: sec(s.Agent, s.Healthy)}
}

// LoadState reads the state in dir (empty when there is none).
func LoadState(dir string) (*State, error) {
	st := &State{}
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		st.Slots = map[string]*SlotState{boot.A: {}, boot.B: {}}
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("slots state: %w", err)
	}
	if st.Slots == nil {
		st.Slots = map[string]*SlotState{}
	}
	for _, s := range []string{boot.A, boot.B} {
		if st.Slots[s] == nil {
			st.Slots[s] = &SlotState{}
		}
	}
	return st, nil
}

// Save writes the state atomically (temporary file, fsync, rename).
func (st *State) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "state.json"), append(b, '\n'), 0o600)
}

func (st *State) fail(a Attempt) {
	st.Attempts = append(st.Attempts, a)
	if len(st.Attempts) > 20 {
		st.Attempts = st.Attempts[len(st.Attempts)-20:]
	}
}
