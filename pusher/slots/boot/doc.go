// Package boot switches a host between its two root slots through the
// bootloader, or by kexec where the kernel is unchanged.
//
// The nouns:
//   - Slot: A ("a") or B ("b"); Other is the one that is not.
//   - Boot: the bootloader behind one small interface (Booted, Default,
//     TryNext, SetDefault); New makes the backend an agent config names.
//   - FileBoot: the bootloader's state in a JSON file, for directory slots
//     and tests, whose Boot method plays the firmware.
//   - GrubBoot: GRUB's environment block (grubenv): next_entry for the one
//     boot on trial, saved_entry for the default; GrubConfig writes the
//     grub.cfg that honours them.
//   - SystemdBoot: systemd-boot's boot counting in the entry names and the
//     LoaderEntryOneShot EFI variable.
//   - KexecPlan: the kernel, initrd and command line a kexec switch loads,
//     made by PlanKexec only when the slot's kernel is the running one.
package boot
