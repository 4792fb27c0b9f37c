package slots

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher"
	"github.com/ingotfleet/ingot/pusher/slots/boot"
)

// switch --kexec refuses clearly where it cannot kexec; with the config's
// kexec a switch that cannot falls back to the bootloader.
func TestSwitchKexecRefusals(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	dA, dB := f.publish(t, imageA()), f.publish(t, imageB())
	m := f.manager(t, f.config(t, "  kexec: true\n"))
	src := f.source(t)
	if res := m.Agent.Syncer.Sync(ctx, dA, src, pusher.SyncOptions{}); !res.OK {
		t.Fatal(res.Error)
	}
	if res := m.SyncSlot(ctx, dB, src, pusher.SyncOptions{}, false); !res.OK {
		t.Fatal(res.Error)
	}
	var ran [][]string
	m.Run = func(_ context.Context, argv []string) error { ran = append(ran, argv); return nil }
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	if err := m.SwitchKexec(ctx); !errors.Is(err, boot.ErrKexecUnavailable) || !strings.Contains(err.Error(), "apt install kexec-tools") {
		t.Fatalf("switch --kexec without kexec-tools: %v", err)
	}
	os.WriteFile(filepath.Join(bin, "kexec"), []byte("#!/bin/sh\nexit 0\n"), 0o755)
	if err := m.SwitchKexec(ctx); !errors.Is(err, errKexecDirSlot) {
		t.Fatalf("switch --kexec to a directory slot: %v", err)
	}
	st, _ := LoadState(f.slotsState)
	if st.Trial != nil || st.Switches != 0 || len(ran) != 0 {
		t.Fatalf("a refused kexec switch left a trial %+v, switch count %d, ran %q", st.Trial, st.Switches, ran)
	}
	// kexec: true in the config: the switch goes through the bootloader.
	if err := m.Switch(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ = LoadState(f.slotsState)
	if st.Trial == nil || st.Trial.Kexec || !st.Trial.Armed || len(ran) != 0 {
		t.Fatalf("fallback switch: trial %+v, ran %q", st.Trial, ran)
	}
	if next, _ := (&boot.FileBoot{Path: f.bootFile}).Next(); next != boot.B {
		t.Fatalf("the bootloader's one-shot is %q, want b", next)
	}
}
