package boot

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/internal/atomicfile"
)

// SystemdBoot switches slots with systemd-boot: each slot has an entry
// ESP/loader/entries/ingot-SLOT.conf. A trial renames the entry to
// ingot-SLOT+N.conf (boot counting: systemd-boot counts each try down in
// the name, ingot-SLOT+0-N.conf once spent, and sorts a spent entry
// last) and sets the EFI variable LoaderEntryOneShot to it, as
// `bootctl set-oneshot` does; a commit renames it back to ingot-SLOT.conf
// (blessed) and writes "default ingot-SLOT.conf" in loader/loader.conf.
type SystemdBoot struct {
	ESP     string // default /boot/efi
	EFIVars string // default /sys/firmware/efi/efivars
	Tries   int    // default 1
	Cmdline string // default /proc/cmdline
}

// loaderGUID is systemd-boot's vendor GUID for its EFI variables.
const loaderGUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

func (s *SystemdBoot) esp() string {
	if s.ESP == "" {
		return "/boot/efi"
	}
	return s.ESP
}

func (s *SystemdBoot) entries() string { return filepath.Join(s.esp(), "loader/entries") }

var countedEntry = regexp.MustCompile(`^ingot-([ab])(?:\+(\d+)(?:-(\d+))?)?\.conf$`)

// Entry finds a slot's entry file: its name, and the tries left and
// spent when it is counted (left -1 when it is not).
func (s *SystemdBoot) Entry(slot string) (name string, left, done int, err error) {
	ents, err := os.ReadDir(s.entries())
	if err != nil {
		return "", 0, 0, err
	}
	for _, e := range ents {
		m := countedEntry.FindStringSubmatch(e.Name())
		if m == nil || m[1] != slot {
			continue
		}
		if name != "" {
			return "", 0, 0, fmt.Errorf("systemd-boot: two entries for slot %s: %s and %s", slot, name, e.Name())
		}
		name, left, done = e.Name(), -1, 0
		if m[2] != "" {
			left, _ = strconv.Atoi(m[2])
			if m[3] != "" {
				done, _ = strconv.Atoi(m[3])
			}
		}
	}
	if name == "" {
		return "", 0, 0, fmt.Errorf("systemd-boot: no entry %s/ingot-%s.conf", s.entries(), slot)
	}
	return name, left, done, nil
}

func (s *SystemdBoot) rename(slot, to string) error {
	name, _, _, err := s.Entry(slot)
	if err != nil {
		return err
	}
	if name == to {
		return nil
	}
	if err := os.Rename(filepath.Join(s.entries(), name), filepath.Join(s.entries(), to)); err != nil {
		return err
	}
	return syncDir(s.entries())
}

// syncDir syncs a directory of the ESP and then its whole filesystem: on
// FAT a rename or a replaced file also changes the allocation table (and
// frees the old clusters later), which a directory's fsync alone may not
// write (see writeEnvBlock).
func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return err
	}
	return unix.Syncfs(fd)
}

func (s *SystemdBoot) Booted() (string, error) { return cmdlineSlot(s.Cmdline) }

func (s *SystemdBoot) loaderConf() string { return filepath.Join(s.esp(), "loader/loader.conf") }

func (s *SystemdBoot) Default() (string, error) {
	b, err := os.ReadFile(s.loaderConf())
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "default" {
			if m := countedEntry.FindStringSubmatch(f[1]); m != nil {
				return m[1], nil
			}
			return "", fmt.Errorf("systemd-boot: default %q is not an ingot slot entry", f[1])
		}
	}
	return "", errors.New("systemd-boot: loader.conf names no default")
}

func (s *SystemdBoot) TryNext(slot string) error {
	if err := validSlot(slot); err != nil {
		return err
	}
	tries := s.Tries
	if tries <= 0 {
		tries = 1
	}
	to := fmt.Sprintf("ingot-%s+%d.conf", slot, tries)
	if err := s.rename(slot, to); err != nil {
		return err
	}
	// The entry's id drops the counter (systemd ≥ 251).
	return s.setVar("LoaderEntryOneShot", "ingot-"+slot+".conf")
}

func (s *SystemdBoot) SetDefault(slot string) error {
	if err := validSlot(slot); err != nil {
		return err
	}
	if err := s.rename(slot, "ingot-"+slot+".conf"); err != nil {
		return err
	}
	b, err := os.ReadFile(s.loaderConf())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var out []string
	set := false
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if f := strings.Fields(l); len(f) >= 1 && f[0] == "default" {
			if !set {
				out = append(out, "default ingot-"+slot+".conf")
				set = true
			}
			continue
		}
		if l != "" || len(out) > 0 {
			out = append(out, l)
		}
	}
	if !set {
		out = append([]string{"default ingot-" + slot + ".conf"}, out...)
	}
	if err := atomicfile.WriteFile(s.loaderConf(), []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(s.loaderConf())); err != nil {
		return err
	}
	return s.removeVar("LoaderEntryOneShot")
}

func (s *SystemdBoot) varPath(name string) string {
	d := s.EFIVars
	if d == "" {
		d = "/sys/firmware/efi/efivars"
	}
	return filepath.Join(d, name+"-"+loaderGUID)
}

// setVar writes an EFI variable holding a UTF-16 string, as systemd's
// tools do: 4 bytes of attributes (non-volatile, boot and runtime
// access), then the string and a NUL.
func (s *SystemdBoot) setVar(name, val string) error {
	p := s.varPath(name)
	b := []byte{7, 0, 0, 0}
	for _, u := range utf16.Encode([]rune(val + "\x00")) {
		b = append(b, byte(u), byte(u>>8))
	}
	clearImmutable(p)
	// efivarfs takes the whole variable in one write.
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return fmt.Errorf("setting EFI variable %s: %w", name, err)
	}
	return nil
}

func (s *SystemdBoot) removeVar(name string) error {
	p := s.varPath(name)
	clearImmutable(p)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing EFI variable %s: %w", name, err)
	}
	return nil
}

// OneShot reads LoaderEntryOneShot ("" when unset).
func (s *SystemdBoot) OneShot() (string, error) {
	b, err := os.ReadFile(s.varPath("LoaderEntryOneShot"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if len(b) < 4 || len(b)%2 != 0 {
		return "", errors.New("LoaderEntryOneShot: malformed")
	}
	var u []uint16
	for i := 4; i+1 < len(b); i += 2 {
		u = append(u, uint16(b[i])|uint16(b[i+1])<<8)
	}
	return string(bytes.TrimRight([]byte(string(utf16.Decode(u))), "\x00")), nil
}

// clearImmutable drops the immutable flag efivarfs sets on variables,
// which would refuse the write; elsewhere it fails and is ignored.
func clearImmutable(p string) {
	f, err := os.Open(p)
	if err != nil {
		return
	}
	defer f.Close()
	attr, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil || attr&fsImmutableFL == 0 {
		return
	}
	// Best effort: the write that follows reports a file still immutable.
	_ = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(attr&^fsImmutableFL))
}

// fsImmutableFL is FS_IMMUTABLE_FL of linux/fs.h.
const fsImmutableFL = 0x10
