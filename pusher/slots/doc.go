// Package slots gives a host two root slots, A and B: one booted, the
// other written by a slot sync and switched to through the bootloader
// with automatic fallback.
//
// The nouns:
//   - Slot: "a" or "b" (boot.A, boot.B), a directory or a block device
//     holding a whole root.
//   - State: which slot is the default, which is on trial, the image each
//     holds, the failed attempts; kept on the data partition both slots see.
//   - Boot: the bootloader (package boot: a plain file, GRUB, systemd-boot,
//     and kexec where the kernel is unchanged).
//   - Manager: a host's slot work: slot syncs, switch, commit, rollback,
//     the trial at boot, snapshots; served over the agent's API.
//   - Trial: a slot booted once after a switch; the agent commits it when
//     its health checks pass, else the next boot returns to the old slot.
//   - Carry-over: the host's /etc merged three ways and its local paths
//     copied into the new slot, with a snapshot of its configuration
//     taken first (package carry).
package slots
