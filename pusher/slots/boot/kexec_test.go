package boot

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/internal/testenv"
)

func TestKexecCmdline(t *testing.T) {
	for _, c := range []struct{ running, want string }{
		{"BOOT_IMAGE=(hd0,gpt2)/vmlinuz root=/dev/vda2 rw console=ttyS0 quiet panic=5 ingot.slot=a",
			"root=/dev/vda3 rw console=ttyS0 quiet panic=5 ingot.slot=b"},
		{"root=UUID=1234 ro initrd=/initrd.img quiet\n", "root=/dev/vda3 ro quiet ingot.slot=b"},
		{"console=ttyS0", "root=/dev/vda3 console=ttyS0 ingot.slot=b"},
	} {
		if got := KexecCmdline(c.running, B, "/dev/vda3"); got != c.want {
			t.Errorf("KexecCmdline(%q)\n = %q\nwant %q", c.running, got, c.want)
		}
	}
}

// The kexec of a slot loads its own kernel and initrd (Debian's symlinks
// resolved inside the slot), only when the kernel is the running one.
func TestPlanKexec(t *testing.T) {
	testenv.RequireRoot(t)
	booted, slot := t.TempDir(), t.TempDir()
	kernel := strings.Repeat("vmlinuz 6.1.0-28 ", 1000)
	writeTree(t, booted, map[string]string{"boot/vmlinuz-6.1.0-28-amd64": kernel, "boot/initrd.img-6.1.0-28-amd64": "old initrd"})
	writeTree(t, slot, map[string]string{"boot/vmlinuz-6.1.0-28-amd64": kernel, "boot/initrd.img-6.1.0-28-amd64": "new initrd"})
	os.Symlink("boot/vmlinuz-6.1.0-28-amd64", filepath.Join(booted, "vmlinuz"))
	os.Symlink("/boot/vmlinuz-6.1.0-28-amd64", filepath.Join(slot, "vmlinuz")) // absolute: resolved in the slot
	os.Symlink("boot/initrd.img-6.1.0-28-amd64", filepath.Join(slot, "initrd.img"))
	p, err := PlanKexec(booted, slot, "", "", "BOOT_IMAGE=/vmlinuz root=/dev/vda2 ro panic=5 ingot.slot=a", B, "/dev/vda3")
	if err != nil {
		t.Fatal(err)
	}
	load, execute := p.Commands(true)
	want := []string{"kexec", "-l", filepath.Join(slot, "boot/vmlinuz-6.1.0-28-amd64"), "--initrd=" + filepath.Join(slot, "boot/initrd.img-6.1.0-28-amd64"),
		"--append=root=/dev/vda3 ro panic=5 ingot.slot=b"}
	if !slices.Equal(load, want) || !slices.Equal(execute, []string{"systemctl", "kexec"}) {
		t.Errorf("commands:\n%q\n%q\nwant\n%q\n[systemctl kexec]", load, execute, want)
	}
	if _, execute := p.Commands(false); !slices.Equal(execute, []string{"kexec", "-e"}) {
		t.Errorf("without systemd: %q", execute)
	}
	// Another kernel in the slot: refused.
	os.WriteFile(filepath.Join(slot, "boot/vmlinuz-6.1.0-28-amd64"), []byte(kernel+"patched"), 0o644)
	if _, err := PlanKexec(booted, slot, "", "", "root=/dev/vda2", B, "/dev/vda3"); !errors.Is(err, ErrKernelChanged) {
		t.Errorf("a changed kernel: %v, want ErrKernelChanged", err)
	}
	// A kernel symlink that leaves the slot: refused.
	os.Remove(filepath.Join(slot, "vmlinuz"))
	os.Symlink("../../../boot/vmlinuz-6.1.0-28-amd64", filepath.Join(slot, "vmlinuz"))
	if _, err := PlanKexec(booted, slot, "", "", "root=/dev/vda2", B, "/dev/vda3"); err == nil || !strings.Contains(err.Error(), "out of the root") {
		t.Errorf("a kernel symlink out of the slot: %v", err)
	}
}
