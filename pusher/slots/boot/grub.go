package boot

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/internal/atomicfile"
)

// GrubBoot switches slots through GRUB's environment block: next_entry
// for the one boot on trial (GRUB clears it as it boots, so the next
// boot is the default again), saved_entry for the default. The menu
// entries have the ids EntryID("a") and EntryID("b"); GrubConfig writes
// a grub.cfg that behaves so.
type GrubBoot struct {
	// Env is the grubenv file (default /boot/grub/grubenv).
	Env string
	// Cmdline is the kernel command line file (default /proc/cmdline).
	Cmdline string
	// SysFS is where sysfs is mounted (default /sys), to refuse a
	// grubenv on RAID or LVM.
	SysFS string
}

// EntryID is the GRUB menu entry id of a slot.
func EntryID(slot string) string { return "ingot-" + slot }

// GrubEnvSize is the size of a GRUB environment block file.
const GrubEnvSize = 1024

const grubEnvHeader = "# GRUB Environment Block\n"

// ErrGrubEnvUnwritable is returned where GRUB cannot write its
// environment block at boot (RAID, LVM), so a one-shot entry would never
// be cleared and a failed slot would be booted forever.
var ErrGrubEnvUnwritable = errors.New("slots: GRUB cannot write grubenv on this device")

func (g *GrubBoot) env() string {
	if g.Env == "" {
		return "/boot/grub/grubenv"
	}
	return g.Env
}

// GrubEnv is the contents of a grubenv file, in order.
type GrubEnv struct {
	Keys []string
	Vals map[string]string
}

// ParseGrubEnv reads an environment block: the header line, NAME=VALUE
// lines (backslash escapes a newline or a backslash), then '#' padding.
func ParseGrubEnv(b []byte) (*GrubEnv, error) {
	if !bytes.HasPrefix(b, []byte(grubEnvHeader)) {
		return nil, errors.New("grubenv: no \"# GRUB Environment Block\" header")
	}
	if len(b) != GrubEnvSize {
		return nil, fmt.Errorf("grubenv: %d bytes, want %d", len(b), GrubEnvSize)
	}
	e := &GrubEnv{Vals: map[string]string{}}
	rest := b[len(grubEnvHeader):]
	for len(rest) > 0 {
		if rest[0] == '#' {
			// A comment or the padding: skip to the end of the line.
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				break
			}
			rest = rest[i+1:]
			continue
		}
		var line []byte
		i := 0
		for ; i < len(rest) && rest[i] != '\n'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
			}
			line = append(line, rest[i])
		}
		if i == len(rest) {
			return nil, errors.New("grubenv: unterminated line")
		}
		rest = rest[i+1:]
		k, v, ok := bytes.Cut(line, []byte("="))
		if !ok || len(k) == 0 {
			return nil, fmt.Errorf("grubenv: bad line %q", line)
		}
		if _, dup := e.Vals[string(k)]; !dup {
			e.Keys = append(e.Keys, string(k))
		}
		e.Vals[string(k)] = string(v)
	}
	return e, nil
}

// Set sets or, with v == "", removes a variable.
func (e *GrubEnv) Set(k, v string) {
	if v == "" {
		if _, ok := e.Vals[k]; ok {
			delete(e.Vals, k)
			e.Keys = slices.DeleteFunc(e.Keys, func(x string) bool { return x == k })
		}
		return
	}
	if _, ok := e.Vals[k]; !ok {
		e.Keys = append(e.Keys, k)
	}
	e.Vals[k] = v
}

// Bytes is the 1024-byte block; an error when the variables do not fit.
func (e *GrubEnv) Bytes() ([]byte, error) {
	b := []byte(grubEnvHeader)
	for _, k := range e.Keys {
		if strings.ContainsAny(k, "=\n\\") {
			return nil, fmt.Errorf("grubenv: bad name %q", k)
		}
		b = append(b, k...)
		b = append(b, '=')
		for _, c := range []byte(e.Vals[k]) {
			if c == '\\' || c == '\n' {
				b = append(b, '\\')
			}
			b = append(b, c)
		}
		b = append(b, '\n')
	}
	if len(b) > GrubEnvSize {
		return nil, fmt.Errorf("grubenv: the variables take %d bytes, more than the block's %d", len(b), GrubEnvSize)
	}
	return append(b, bytes.Repeat([]byte("#"), GrubEnvSize-len(b))...), nil
}

func (g *GrubBoot) load() (*GrubEnv, error) {
	b, err := os.ReadFile(g.env())
	if errors.Is(err, os.ErrNotExist) {
		return &GrubEnv{Vals: map[string]string{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseGrubEnv(b)
}

func (g *GrubBoot) edit(fn func(*GrubEnv)) error {
	if err := g.CheckWritable(); err != nil {
		return err
	}
	e, err := g.load()
	if err != nil {
		return err
	}
	fn(e)
	b, err := e.Bytes()
	if err != nil {
		return err
	}
	return writeEnvBlock(g.env(), b)
}

// writeEnvBlock writes a grubenv. An existing block of the same size is
// rewritten in place, as grub-editenv and GRUB's save_env do: on the ESP's
// FAT, a new file renamed over the old one allocates clusters and frees
// the old ones, metadata a power cut right after can leave half written
// (seen in QEMU: a hard reset soon after a commit left an invalid cluster
// chain, GRUB could not load grubenv and booted the first entry). In place,
// only the block's own sectors change; the variables fit in its first
// sector, so a torn write still leaves a valid block. A missing file is
// created atomically. The filesystem is synced after either.
func writeEnvBlock(name string, b []byte) error {
	if f, err := os.OpenFile(name, os.O_WRONLY|unix.O_NOFOLLOW, 0); err == nil {
		done, err := rewriteInPlace(f, b)
		if cerr := f.Close(); err == nil && done {
			err = cerr
		}
		if done || err != nil {
			return err
		}
	}
	if err := atomicfile.WriteFile(name, b, 0o644); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}

// rewriteInPlace writes b over f when f is a regular file of b's size,
// and syncs it and its filesystem; done is false when f is not such a
// file (nothing was written).
func rewriteInPlace(f *os.File, b []byte) (done bool, err error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.Size() != int64(len(b)) {
		return false, nil
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		return true, fmt.Errorf("grubenv: %w", err)
	}
	if err := f.Sync(); err != nil {
		return true, fmt.Errorf("grubenv: %w", err)
	}
	return true, unix.Syncfs(int(f.Fd()))
}

// CheckWritable refuses a grubenv on a device GRUB does not write at boot:
// Linux software RAID (md) or device-mapper (LVM, dm-crypt). The check
// looks at the block device holding the file's directory, and at its
// whole disk when it is a partition.
func (g *GrubBoot) CheckWritable() error {
	sys := g.SysFS
	if sys == "" {
		sys = "/sys"
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Dir(g.env()), &st); err != nil {
		return fmt.Errorf("grubenv: %w", err)
	}
	dev := filepath.Join(sys, "dev/block", fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)))
	real, err := filepath.EvalSymlinks(dev)
	if err != nil {
		// Not a block device (tmpfs, overlay in a test or a container):
		// there is no bootloader below it to refuse.
		return nil
	}
	for _, d := range []string{real, filepath.Dir(real)} {
		name := filepath.Base(d)
		if fileExists(filepath.Join(d, "md")) {
			return fmt.Errorf("%w: %s is on %s, a software RAID (md) device; put grubenv on a plain partition (the ESP) and point boot.grubenv at it", ErrGrubEnvUnwritable, g.env(), name)
		}
		if fileExists(filepath.Join(d, "dm")) || strings.HasPrefix(name, "dm-") {
			return fmt.Errorf("%w: %s is on %s, a device-mapper (LVM or dm-crypt) device; put grubenv on a plain partition (the ESP) and point boot.grubenv at it", ErrGrubEnvUnwritable, g.env(), name)
		}
	}
	return nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func (g *GrubBoot) Booted() (string, error) { return cmdlineSlot(g.Cmdline) }

func (g *GrubBoot) Default() (string, error) {
	e, err := g.load()
	if err != nil {
		return "", err
	}
	s, ok := strings.CutPrefix(e.Vals["saved_entry"], "ingot-")
	if !ok || validSlot(s) != nil {
		return "", fmt.Errorf("grubenv: saved_entry %q is not an ingot slot entry", e.Vals["saved_entry"])
	}
	return s, nil
}

func (g *GrubBoot) TryNext(slot string) error {
	if err := validSlot(slot); err != nil {
		return err
	}
	return g.edit(func(e *GrubEnv) { e.Set("next_entry", EntryID(slot)) })
}

func (g *GrubBoot) SetDefault(slot string) error {
	if err := validSlot(slot); err != nil {
		return err
	}
	return g.edit(func(e *GrubEnv) {
		e.Set("saved_entry", EntryID(slot))
		e.Set("next_entry", "")
	})
}

// GrubEntry is one slot's menu entry.
type GrubEntry struct {
	Slot string
	// Root is GRUB's device of the slot's filesystem, e.g. "(hd0,gpt2)";
	// the kernel and initrd are read from the slot itself.
	Root string
	// Kernel and Initrd are paths in the slot (default /vmlinuz and
	// /initrd.img, Debian's symlinks).
	Kernel, Initrd string
	// Cmdline is the kernel command line; "ingot.slot=SLOT" is added.
	Cmdline string
}

// GrubOneShot is the grub.cfg part that picks the entry: next_entry once
// (cleared in grubenv before it boots), else saved_entry.
func GrubOneShot(envFile string) string {
	return fmt.Sprintf("load_env --file %s\nif [ \"${next_entry}\" ] ; then\n  set default=\"${next_entry}\"\n  set next_entry=\n  save_env --file %s next_entry\nelse\n  set default=\"${saved_entry}\"\nfi\n", envFile, envFile)
}

// GrubConfig is a grub.cfg that boots next_entry once (clearing it in
// grubenv first, so a boot that fails falls back), else saved_entry.
// envFile is the grubenv path as GRUB names it, e.g.
// "(hd0,gpt1)/EFI/ingot/grubenv".
func GrubConfig(envFile string, timeout int, entries []GrubEntry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "set timeout=%d\n", timeout)
	b.WriteString(GrubOneShot(envFile))
	for _, e := range entries {
		k, i := e.Kernel, e.Initrd
		if k == "" {
			k = "/vmlinuz"
		}
		if i == "" {
			i = "/initrd.img"
		}
		fmt.Fprintf(&b, "menuentry 'ingot slot %s' --id %s {\n  linux %s%s %s ingot.slot=%s\n  initrd %s%s\n}\n",
			e.Slot, EntryID(e.Slot), e.Root, k, e.Cmdline, e.Slot, e.Root, i)
	}
	return b.String()
}
