// Package sandbox runs a command inside a root filesystem, hermetically.
//
// Run starts the command in new mount, pid, uts, ipc and network
// namespaces, with the root directory pivoted to the image (pivot_root, so
// there is no chroot to climb out of), a fresh /proc, a minimal /dev on a
// tmpfs (null, zero, full, random, urandom, tty, console, ptmx, pts, shm,
// fd), a fixed hostname, umask 022 and a fixed environment:
// SOURCE_DATE_EPOCH, LC_ALL=C.UTF-8, TZ=UTC, PATH, HOME=/root,
// DEBIAN_FRONTEND=noninteractive. The network namespace is new and left
// empty (not even loopback is up unless Options.Loopback asks for it), so
// nothing inside can reach a network.
// A policy-rc.d that exits 101 stops invoke-rc.d from starting daemons.
//
// The sandbox's init is the calling binary itself: Run re-executes
// /proc/self/exe with a marker in its environment, and this package's
// init function turns that process into the sandbox's pid 1 (it mounts,
// pivots, starts the command, reaps orphans and passes the exit status
// back). Any binary that imports this package, test binaries included,
// can therefore call Run. It needs root.
//
// With Options.Untrusted the command is also kept from the host: it is
// root of a user namespace whose ids map to an unprivileged host range
// (HostIDBase), the root is an idmapped, nodev mount (so files keep their
// on-disk owners), /dev holds only null, zero, full, random, urandom and
// tty bound from the host, capabilities are cut to what dpkg uses, and a
// seccomp filter refuses mounting, new namespaces, kernel-code loading,
// ptrace and open_by_handle_at (untrusted.go, seccomp.go). ingot review
// runs the package under review this way; ingot build runs the project's
// own specs in the privileged sandbox.
//
// Run changes nothing in the root except what the command does: mount
// points it had to create and the policy-rc.d it placed are removed
// afterwards, and every mount lives in the sandbox's own mount namespace,
// which disappears with its last process.
package sandbox
