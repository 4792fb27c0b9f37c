package boot

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/pusher"
)

// A kexec switch starts the other slot without firmware and bootloader:
// the running kernel loads the slot's kernel and initrd (kexec -l) with
// the running command line, its root= and ingot.slot= pointing at the
// slot, and jumps into it (systemctl kexec, which stops services first;
// kexec -e without systemd). It is offered only where the slot's kernel
// is byte for byte the running one: a kernel not yet proven on this
// hardware goes through the firmware like any other boot.
//
// The bootloader is not told: the trial is armed by the kexec alone, so
// a kernel panic, a hang reset by the watchdog, a failed check's reboot
// — any boot through the firmware — starts the default slot.

// ErrKexecUnavailable is returned when kexec-tools is not installed.
var ErrKexecUnavailable = errors.New("slots: kexec is not installed (Debian: apt install kexec-tools)")

// ErrKernelChanged is returned for a kexec switch to a slot whose kernel
// differs from the running one.
var ErrKernelChanged = errors.New("slots: the slot's kernel differs from the running one: kexec reuses an unchanged kernel only; switch through the bootloader")

// KexecPlan is what a kexec switch loads.
type KexecPlan struct {
	Kernel, Initrd string // absolute paths (in the mounted slot)
	Cmdline        string
}

// Commands are the two commands of a kexec switch: load, then execute
// (systemctl kexec with systemd, else kexec -e).
func (p KexecPlan) Commands(systemd bool) (load, execute []string) {
	load = []string{"kexec", "-l", p.Kernel}
	if p.Initrd != "" {
		load = append(load, "--initrd="+p.Initrd)
	}
	load = append(load, "--append="+p.Cmdline)
	if systemd {
		return load, []string{"systemctl", "kexec"}
	}
	return load, []string{"kexec", "-e"}
}

// KexecCmdline is the running kernel command line made to boot slot from
// the root device root: root= and ingot.slot= replaced (added when
// missing), what only a bootloader passes (BOOT_IMAGE=, initrd=)
// dropped, the rest kept in order.
func KexecCmdline(running, slot, root string) string {
	var out []string
	for _, f := range strings.Fields(running) {
		switch {
		case strings.HasPrefix(f, "root="), strings.HasPrefix(f, "ingot.slot="),
			strings.HasPrefix(f, "BOOT_IMAGE="), strings.HasPrefix(f, "initrd="):
			continue
		}
		out = append(out, f)
	}
	return strings.Join(append([]string{"root=" + root}, append(out, "ingot.slot="+slot)...), " ")
}

// bootFile resolves a kernel or initrd path of a root (Debian's
// /vmlinuz is a symlink into boot/, relative or absolute) to a regular
// file inside that root and returns its path relative to the root.
func bootFile(t *pusher.Tree, rel string) (string, error) {
	for range 8 {
		e, err := t.Lstat(rel)
		if err != nil {
			return "", err
		}
		switch e.Type {
		case images.TypeFile:
			return rel, nil
		case images.TypeSymlink:
			if path.IsAbs(e.Link) {
				rel = path.Clean(strings.TrimPrefix(e.Link, "/"))
			} else {
				rel = path.Clean(path.Join(path.Dir(rel), e.Link))
			}
			if rel == ".." || strings.HasPrefix(rel, "../") {
				return "", fmt.Errorf("%s points out of the root", e.Path)
			}
		default:
			return "", fmt.Errorf("%s is not a regular file", rel)
		}
	}
	return "", fmt.Errorf("%s: too many symlinks", rel)
}

func fileSum(t *pusher.Tree, rel string) ([32]byte, error) {
	f, err := t.Open(rel)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

// PlanKexec checks that the kernel of the root at slotRoot is the one
// of the root at bootedRoot and returns what a kexec into it loads.
// kernel and initrd are paths in the roots ("" for Debian's vmlinuz and
// initrd.img symlinks); cmdline is the running command line.
func PlanKexec(bootedRoot, slotRoot, kernel, initrd, cmdline, slot, rootDev string) (KexecPlan, error) {
	if kernel == "" {
		kernel = "vmlinuz"
	}
	if initrd == "" {
		initrd = "initrd.img"
	}
	kernel, initrd = strings.TrimPrefix(kernel, "/"), strings.TrimPrefix(initrd, "/")
	bt, err := pusher.OpenTree(bootedRoot)
	if err != nil {
		return KexecPlan{}, err
	}
	defer bt.Close()
	st, err := pusher.OpenTree(slotRoot)
	if err != nil {
		return KexecPlan{}, err
	}
	defer st.Close()
	var sums [2][32]byte
	var slotKernel string
	for i, t := range []*pusher.Tree{bt, st} {
		rel, err := bootFile(t, kernel)
		if err != nil {
			return KexecPlan{}, fmt.Errorf("kexec: the kernel /%s of %s: %w", kernel, t.Path(), err)
		}
		if sums[i], err = fileSum(t, rel); err != nil {
			return KexecPlan{}, fmt.Errorf("kexec: reading the kernel of %s: %w", t.Path(), err)
		}
		slotKernel = rel
	}
	if sums[0] != sums[1] {
		return KexecPlan{}, ErrKernelChanged
	}
	p := KexecPlan{Kernel: filepath.Join(slotRoot, slotKernel), Cmdline: KexecCmdline(cmdline, slot, rootDev)}
	rel, err := bootFile(st, initrd)
	switch {
	case err == nil:
		p.Initrd = filepath.Join(slotRoot, rel)
	case !errors.Is(err, fs.ErrNotExist):
		return KexecPlan{}, fmt.Errorf("kexec: the initrd of slot %s: %w", slot, err)
	}
	return p, nil
}
