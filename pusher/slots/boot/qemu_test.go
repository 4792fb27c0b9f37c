package boot

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/internal/testenv"
)

// ovmfFirmware is Debian's UEFI firmware for QEMU (package ovmf).
const ovmfFirmware = "/usr/share/ovmf/OVMF.fd"

// TestGrubOneShotInQEMU boots real GRUB (EFI, from grub-efi-amd64-bin)
// under OVMF in QEMU (TCG) from a GPT disk whose ESP holds a grubenv
// written by GrubBoot. The entries print a marker to the serial console
// and power off. next_entry boots slot b once; GRUB clears it, so the
// next boot falls back to saved_entry a; after SetDefault(b), b boots.
func TestGrubOneShotInQEMU(t *testing.T) {
	for tool, pkg := range map[string]string{"qemu-system-x86_64": "qemu-system-x86", "grub-mkstandalone": "grub-common",
		"mcopy": "mtools", "mkfs.vfat": "dosfstools", "sfdisk": "fdisk"} {
		testenv.RequireTool(t, tool, pkg)
	}
	if _, err := os.Stat(ovmfFirmware); err != nil {
		t.Fatalf("%s: %v (install the Debian package ovmf)", ovmfFirmware, err)
	}
	if _, err := os.Stat("/usr/lib/grub/x86_64-efi/normal.mod"); err != nil {
		t.Fatalf("GRUB's x86_64-efi modules are missing (install the Debian package grub-efi-amd64-bin): %v", err)
	}
	dir := t.TempDir()
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	p := func(n string) string { return filepath.Join(dir, n) }

	// GRUB, standalone: its embedded config finds the ESP and reads ours.
	os.WriteFile(p("embed.cfg"), []byte("search --no-floppy --set=root --file /EFI/ingot/grub.cfg\nconfigfile /EFI/ingot/grub.cfg\n"), 0o644)
	run("grub-mkstandalone", "-O", "x86_64-efi", "-o", p("BOOTX64.EFI"),
		"--install-modules=part_gpt fat search search_fs_file configfile loadenv echo halt test normal",
		"--modules=part_gpt fat", "--locales=", "--fonts=", "--themes=",
		"boot/grub/grub.cfg="+p("embed.cfg"))
	cfg := "set timeout=0\n" + GrubOneShot("/EFI/ingot/grubenv") +
		"menuentry 'slot a' --id ingot-a {\n  echo INGOT-BOOTED-a\n  halt\n}\n" +
		"menuentry 'slot b' --id ingot-b {\n  echo INGOT-BOOTED-b\n  halt\n}\n"
	os.WriteFile(p("grub.cfg"), []byte(cfg), 0o644)
	g := &GrubBoot{Env: p("grubenv")}
	if err := g.SetDefault(A); err != nil {
		t.Fatal(err)
	}
	if err := g.TryNext(B); err != nil {
		t.Fatal(err)
	}

	// A GPT disk: the ESP (FAT) at 1 MiB, made without mounting.
	run("truncate", "-s", "34M", p("esp.img"))
	run("mkfs.vfat", "-F", "32", p("esp.img"))
	for _, d := range []string{"::/EFI", "::/EFI/BOOT", "::/EFI/ingot"} {
		run("mmd", "-i", p("esp.img"), d)
	}
	run("mcopy", "-i", p("esp.img"), p("BOOTX64.EFI"), "::/EFI/BOOT/BOOTX64.EFI")
	run("mcopy", "-i", p("esp.img"), p("grub.cfg"), "::/EFI/ingot/grub.cfg")
	run("truncate", "-s", "36M", p("disk.img"))
	sf := exec.Command("sfdisk", "--quiet", p("disk.img"))
	sf.Stdin = strings.NewReader("label: gpt\nstart=2048, size=69632, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=ESP\n")
	if out, err := sf.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	run("dd", "if="+p("esp.img"), "of="+p("disk.img"), "bs=1M", "seek=1", "conv=notrunc", "status=none")
	// From here the ESP is reached inside the disk image (@@1M).
	esp := p("disk.img") + "@@1M"
	putEnv := func() { run("mcopy", "-o", "-i", esp, p("grubenv"), "::/EFI/ingot/grubenv") }
	putEnv()
	getEnv := func() *GrubEnv {
		t.Helper()
		os.Remove(p("grubenv.out"))
		run("mcopy", "-i", esp, "::/EFI/ingot/grubenv", p("grubenv.out"))
		b, _ := os.ReadFile(p("grubenv.out"))
		e, err := ParseGrubEnv(b)
		if err != nil {
			t.Fatalf("the grubenv GRUB left: %v", err)
		}
		return e
	}
	boot := func() string {
		t.Helper()
		// A guard against a hung VM, not a timing requirement.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		os.Remove(p("serial.log"))
		start := time.Now()
		cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "256",
			"-nodefaults", "-display", "none", "-no-reboot", "-bios", ovmfFirmware,
			"-drive", "file="+p("disk.img")+",format=raw,if=virtio", "-serial", "file:"+p("serial.log"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("qemu: %v\n%s\nserial:\n%s", err, out, mustRead(t, p("serial.log")))
		}
		log := mustRead(t, p("serial.log"))
		for _, s := range []string{A, B} {
			if strings.Contains(log, "INGOT-BOOTED-"+s) {
				t.Logf("booted slot %s in %.1fs", s, time.Since(start).Seconds())
				return s
			}
		}
		t.Fatalf("no slot booted; serial console:\n%s", log)
		return ""
	}

	if s := boot(); s != B {
		t.Fatalf("first boot after TryNext(b): slot %s", s)
	}
	if e := getEnv(); e.Vals["next_entry"] != "" || e.Vals["saved_entry"] != "ingot-a" {
		t.Fatalf("GRUB left next_entry=%q saved_entry=%q", e.Vals["next_entry"], e.Vals["saved_entry"])
	}
	if s := boot(); s != A {
		t.Fatalf("second boot (one-shot spent): slot %s, want the fallback a", s)
	}
	// Commit b: GrubBoot edits the grubenv GRUB itself rewrote.
	run("cp", p("grubenv.out"), p("grubenv"))
	if err := g.SetDefault(B); err != nil {
		t.Fatal(err)
	}
	putEnv()
	if s := boot(); s != B {
		t.Fatalf("boot after SetDefault(b): slot %s", s)
	}
}
