package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// An untrusted sandbox (Options.Untrusted) adds to the namespaces of every
// sandbox:
//
//   - a user namespace: ids 0..IDCount-1 inside are HostIDBase.. outside, so
//     root inside is an unprivileged, unnamed user of the host;
//   - the root filesystem as an idmapped mount (mount_setattr with
//     MOUNT_ATTR_IDMAP, made by Run in the host's namespaces and handed to
//     the init), through which a file owned by uid N on disk is owned by N
//     inside, and a file made by N inside is owned by N on disk: the tree
//     ends up exactly as a privileged sandbox leaves it, with no chown walk;
//     the mount is nodev, so a device node in the image cannot be opened;
//   - a /dev that is a nodev tmpfs holding bind mounts of the host's null,
//     zero, full, random, urandom and tty (a user namespace cannot mknod);
//   - capabilities cut to the ones dpkg and maintainer scripts use
//     (keptCaps), in the bounding set too, with no_new_privs set;
//   - the seccomp filter of seccomp.go.

// HostIDBase is the first host uid and gid of an untrusted sandbox's user
// namespace, and IDCount how many ids it maps. The range lies far above
// the ids Debian hands to users (up to 60000) and to subordinate ranges
// of ordinary users (100000 onwards, 65536 per user).
const (
	HostIDBase = 0x70000000
	IDCount    = 65536
)

// keptCaps are the capabilities an untrusted command keeps (within its
// user namespace): owners, modes and file capabilities of the files it
// installs, changing user for a script that drops root, signals, chroot.
// Everything else, CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_MKNOD and
// CAP_NET_ADMIN among them, is dropped from every set.
var keptCaps = []uintptr{
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH, unix.CAP_FOWNER,
	unix.CAP_FSETID, unix.CAP_KILL, unix.CAP_SETGID, unix.CAP_SETUID, unix.CAP_SETFCAP,
	unix.CAP_NET_BIND_SERVICE, unix.CAP_SYS_CHROOT, unix.CAP_AUDIT_WRITE,
}

// StageDir is the directory on which an untrusted sandbox's init mounts
// the idmapped root (within its own mount namespace) before it pivots
// into it. Run creates it, empty and mode 0755, when it is missing.
const StageDir = "/run/ingot-sandbox"

// ensureStageDir makes StageDir exist as a real directory owned by root.
func ensureStageDir() error {
	if err := os.Mkdir(StageDir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating %s: %w", StageDir, err)
	}
	fi, err := os.Lstat(StageDir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is not a directory owned by root and writable only by it", StageDir)
	}
	return nil
}

// untrustedDevices are bind-mounted from the host's /dev.
var untrustedDevices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// idmappedRoot clones the mount tree at root as a detached mount whose ids
// are shifted by the user namespace of process pid, nodev and nosuid.
// The caller owns the returned descriptor.
func idmappedRoot(root string, pid int) (int, error) {
	userns, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening the sandbox's user namespace: %w", err)
	}
	defer unix.Close(userns)
	fd, err := unix.OpenTree(unix.AT_FDCWD, root, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return -1, fmt.Errorf("open_tree %s: %w", root, err)
	}
	attr := unix.MountAttr{
		Attr_set:  unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID,
		Userns_fd: uint64(userns),
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		_ = unix.Close(fd) // an unattached mount tree: closing it only frees it
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			return -1, fmt.Errorf("the filesystem of %s cannot be mounted idmapped (needs Linux >= 5.12 and ext4, xfs, btrfs, tmpfs or another filesystem that supports idmapped mounts): %w", root, err)
		}
		return -1, fmt.Errorf("idmapping %s: %w", root, err)
	}
	return fd, nil
}

// sendFD passes fd over the unix socket sock.
func sendFD(sock *os.File, fd int) error {
	return unix.Sendmsg(int(sock.Fd()), []byte{0}, unix.UnixRights(fd), nil, 0)
}

// receiveFD reads one descriptor from the unix socket sock.
func receiveFD(sock *os.File) (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("receiving the root mount: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, fmt.Errorf("receiving the root mount: no descriptor (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return -1, fmt.Errorf("receiving the root mount: no descriptor (%v)", err)
	}
	return fds[0], nil
}

// attachRoot mounts the idmapped tree received from Run on root.
func attachRoot(sock *os.File, root string) error {
	fd, err := receiveFD(sock)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, root, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attaching the idmapped root on %s: %w", root, err)
	}
	return nil
}

// untrustedDev fills the tmpfs at dev with bind mounts of the host's
// device nodes (seen at hostDev, before the pivot).
func untrustedDev(dev, hostDev string) error {
	for _, name := range untrustedDevices {
		p := filepath.Join(dev, name)
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
		if err != nil {
			return err
		}
		_ = f.Close() // an empty mount point: nothing written to lose
		if err := syscall.Mount(filepath.Join(hostDev, name), p, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding %s: %w", filepath.Join(hostDev, name), err)
		}
	}
	return nil
}

// dropPrivileges cuts the calling thread's capabilities to keptCaps (the
// bounding set included, so that nothing exec'd regains them) and sets
// no_new_privs and the seccomp filter. Everything the thread forks
// afterwards inherits the lot.
func dropPrivileges() error {
	kept := map[uintptr]bool{}
	for _, c := range keptCaps {
		kept[c] = true
	}
	for c := uintptr(0); c < 64; c++ { // past the kernel's last capability the call fails with EINVAL
		if kept[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	// No ambient capabilities, none inheritable; permitted and effective
	// are the kept ones.
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	var data [2]unix.CapUserData
	for _, c := range keptCaps {
		data[c/32].Permitted |= 1 << (c % 32)
		data[c/32].Effective |= 1 << (c % 32)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return installFilter()
}
