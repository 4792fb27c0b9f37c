package boot

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/internal/testenv"
)

func TestFileBootOneShotFallsBack(t *testing.T) {
	f := &FileBoot{Path: filepath.Join(t.TempDir(), "boot.json")}
	if s, _ := f.Booted(); s != A {
		t.Fatalf("a new host boots %q, want a", s)
	}
	if err := f.TryNext(B); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{B, A, A} {
		got, err := f.Boot()
		if err != nil || got != want {
			t.Fatalf("boot %d: %q, %v; want %q", i, got, err, want)
		}
	}
	f.TryNext(B)
	f.Boot()
	if err := f.SetDefault(B); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Boot(); got != B {
		t.Fatalf("after commit, boot %q, want b", got)
	}
	if err := f.TryNext("c"); err == nil {
		t.Fatal("slot c accepted")
	}
}

func grubEditenv(t *testing.T, args ...string) string {
	t.Helper()
	testenv.RequireTool(t, "grub-editenv", "grub-common")
	out, err := exec.Command("grub-editenv", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("grub-editenv %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// The grubenv written by GrubBoot is read by GRUB's own grub-editenv, and
// one grub-editenv wrote is read by GrubBoot.
func TestGrubEnvMatchesGrubEditenv(t *testing.T) {
	dir := t.TempDir()
	env := filepath.Join(dir, "grubenv")
	grubEditenv(t, env, "create")
	grubEditenv(t, env, "set", "saved_entry=ingot-a", `odd=x\y`, "other=kept")
	g := &GrubBoot{Env: env}
	if d, err := g.Default(); err != nil || d != A {
		t.Fatalf("Default = %q, %v", d, err)
	}
	if err := g.TryNext(B); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(env)
	if len(b) != GrubEnvSize {
		t.Fatalf("grubenv is %d bytes", len(b))
	}
	list := grubEditenv(t, env, "list")
	for _, want := range []string{"saved_entry=ingot-a\n", "next_entry=ingot-b\n", "other=kept\n", `odd=x\y` + "\n"} {
		if !strings.Contains(list, want) {
			t.Errorf("grub-editenv list lacks %q:\n%s", want, list)
		}
	}
	if err := g.SetDefault(B); err != nil {
		t.Fatal(err)
	}
	list = grubEditenv(t, env, "list")
	if strings.Contains(list, "next_entry") || !strings.Contains(list, "saved_entry=ingot-b\n") {
		t.Errorf("after SetDefault(b):\n%s", list)
	}
	// grub-editenv unsets what GrubBoot set, and GrubBoot reads it back.
	g.TryNext(A)
	grubEditenv(t, env, "unset", "next_entry")
	e, err := g.load()
	if err != nil || e.Vals["next_entry"] != "" || e.Vals["odd"] != `x\y` {
		t.Fatalf("after grub-editenv unset: %v %v", e, err)
	}
}

func TestGrubEnvFormat(t *testing.T) {
	e := &GrubEnv{Vals: map[string]string{}}
	e.Set("a", "line1\nline2\\")
	b, err := e.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	want := "# GRUB Environment Block\na=line1\\\nline2\\\\\n"
	if !bytes.HasPrefix(b, []byte(want)) || len(b) != 1024 || strings.Trim(string(b[len(want):]), "#") != "" {
		t.Fatalf("block %q", b[:len(want)+4])
	}
	back, err := ParseGrubEnv(b)
	if err != nil || back.Vals["a"] != "line1\nline2\\" {
		t.Fatalf("round trip: %q %v", back.Vals["a"], err)
	}
	e.Set("big", strings.Repeat("x", 1000))
	if _, err := e.Bytes(); err == nil {
		t.Fatal("an environment over 1024 bytes was accepted")
	}
	for _, bad := range []string{"", "# GRUB Environment Block\nx=1\n", "not a block" + strings.Repeat("#", 1013)} {
		if _, err := ParseGrubEnv([]byte(bad)); err == nil {
			t.Errorf("ParseGrubEnv(%.30q) accepted", bad)
		}
	}
}

// A grubenv on device-mapper or md RAID is refused before anything is
// written: GRUB could not clear next_entry at boot.
func TestGrubRefusesRAIDAndLVM(t *testing.T) {
	dir := t.TempDir()
	env := filepath.Join(dir, "grubenv")
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	devName := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	for _, tc := range []struct{ name, dev, sub string }{
		{"lvm", "devices/virtual/block/dm-3", "dm"},
		{"raid", "devices/virtual/block/md0", "md"},
		{"raid partition", "devices/virtual/block/md0/md0p1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := t.TempDir()
			os.MkdirAll(filepath.Join(sys, tc.dev), 0o755)
			if tc.name == "raid partition" {
				os.MkdirAll(filepath.Join(sys, "devices/virtual/block/md0/md"), 0o755)
			} else {
				os.MkdirAll(filepath.Join(sys, tc.dev, tc.sub), 0o755)
			}
			os.MkdirAll(filepath.Join(sys, "dev/block"), 0o755)
			if err := os.Symlink(filepath.Join("../..", tc.dev), filepath.Join(sys, "dev/block", devName)); err != nil {
				t.Fatal(err)
			}
			g := &GrubBoot{Env: env, SysFS: sys}
			err := g.TryNext(B)
			if !errors.Is(err, ErrGrubEnvUnwritable) {
				t.Fatalf("TryNext on %s: %v", tc.name, err)
			}
			if _, serr := os.Stat(env); serr == nil {
				t.Fatal("grubenv written anyway")
			}
			t.Log(err)
		})
	}
	// A plain disk passes.
	sys := t.TempDir()
	os.MkdirAll(filepath.Join(sys, "devices/pci0/block/sda/sda1"), 0o755)
	os.MkdirAll(filepath.Join(sys, "dev/block"), 0o755)
	os.Symlink("../../devices/pci0/block/sda/sda1", filepath.Join(sys, "dev/block", devName))
	if err := (&GrubBoot{Env: env, SysFS: sys}).TryNext(B); err != nil {
		t.Fatalf("plain partition refused: %v", err)
	}
}

func TestGrubConfigHasOneShot(t *testing.T) {
	cfg := GrubConfig("(hd0,gpt1)/grubenv", 1, []GrubEntry{{Slot: A, Root: "(hd0,gpt2)", Cmdline: "root=/dev/vda2"}})
	for _, want := range []string{"set next_entry=\n", "save_env --file (hd0,gpt1)/grubenv next_entry", `set default="${saved_entry}"`, "--id ingot-a", "ingot.slot=a"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("grub.cfg lacks %q:\n%s", want, cfg)
		}
	}
}

func TestSystemdBootCountingAndOneShot(t *testing.T) {
	esp, vars := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(esp, "loader/entries"), 0o755)
	for _, s := range []string{A, B} {
		os.WriteFile(filepath.Join(esp, "loader/entries", "ingot-"+s+".conf"), []byte("title slot "+s+"\noptions ingot.slot="+s+"\n"), 0o644)
	}
	os.WriteFile(filepath.Join(esp, "loader/loader.conf"), []byte("timeout 3\ndefault ingot-a.conf\n"), 0o644)
	cmdline := filepath.Join(t.TempDir(), "cmdline")
	os.WriteFile(cmdline, []byte("BOOT_IMAGE=/vmlinuz root=/dev/vda2 ingot.slot=a quiet\n"), 0o644)
	sd := &SystemdBoot{ESP: esp, EFIVars: vars, Tries: 3, Cmdline: cmdline}
	if s, err := sd.Booted(); s != A || err != nil {
		t.Fatalf("Booted = %q, %v", s, err)
	}
	if err := sd.TryNext(B); err != nil {
		t.Fatal(err)
	}
	if name, left, done, err := sd.Entry(B); err != nil || name != "ingot-b+3.conf" || left != 3 || done != 0 {
		t.Fatalf("entry after TryNext: %q %d %d %v", name, left, done, err)
	}
	raw, _ := os.ReadFile(filepath.Join(vars, "LoaderEntryOneShot-"+loaderGUID))
	want := []byte{7, 0, 0, 0}
	for _, c := range "ingot-b.conf\x00" {
		want = append(want, byte(c), 0)
	}
	if !bytes.Equal(raw, want) {
		t.Fatalf("LoaderEntryOneShot = % x\nwant % x", raw, want)
	}
	// systemd-boot counts the tries down in the name as it boots.
	os.Rename(filepath.Join(esp, "loader/entries/ingot-b+3.conf"), filepath.Join(esp, "loader/entries/ingot-b+0-3.conf"))
	if _, left, done, _ := sd.Entry(B); left != 0 || done != 3 {
		t.Fatalf("spent entry read as %d left, %d done", left, done)
	}
	if d, _ := sd.Default(); d != A {
		t.Fatalf("default %q before commit", d)
	}
	if err := sd.SetDefault(B); err != nil {
		t.Fatal(err)
	}
	if name, left, _, _ := sd.Entry(B); name != "ingot-b.conf" || left != -1 {
		t.Fatalf("entry after commit: %q", name)
	}
	conf, _ := os.ReadFile(filepath.Join(esp, "loader/loader.conf"))
	if string(conf) != "timeout 3\ndefault ingot-b.conf\n" {
		t.Fatalf("loader.conf:\n%s", conf)
	}
	if v, _ := sd.OneShot(); v != "" {
		t.Fatalf("one-shot %q left after commit", v)
	}
	os.WriteFile(cmdline, []byte("root=/dev/vda2\n"), 0o644)
	if _, err := sd.Booted(); err == nil {
		t.Fatal("a command line without ingot.slot= was accepted")
	}
}

// An existing grubenv is rewritten in place (same inode, so on FAT the
// same clusters), as grub-editenv does; a missing one is created.
func TestGrubEnvWrittenInPlace(t *testing.T) {
	env := filepath.Join(t.TempDir(), "grubenv")
	g := &GrubBoot{Env: env, SysFS: t.TempDir()}
	if err := g.SetDefault(A); err != nil {
		t.Fatal(err)
	}
	ino := func() uint64 {
		var st unix.Stat_t
		if err := unix.Stat(env, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	before := ino()
	if err := g.TryNext(B); err != nil {
		t.Fatal(err)
	}
	if err := g.SetDefault(B); err != nil {
		t.Fatal(err)
	}
	if ino() != before {
		t.Fatal("grubenv was replaced, not rewritten in place")
	}
	e, err := g.load()
	if err != nil || e.Vals["saved_entry"] != EntryID(B) || e.Vals["next_entry"] != "" {
		t.Fatalf("grubenv after the commit: %+v %v", e, err)
	}
	if fi, _ := os.Stat(env); fi.Size() != 1024 {
		t.Fatalf("grubenv is %d bytes", fi.Size())
	}
}
