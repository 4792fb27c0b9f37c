package sandbox

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The seccomp filter of an untrusted sandbox. It is a deny list: the
// command may make every system call except the ones below, which fail
// with EPERM. They are the calls that reach past the sandbox's walls or
// into the kernel itself, and none of them is something dpkg or a
// maintainer script needs:
//
//   - mounting and unmounting of every kind (the sandbox's own mounts are
//     made before the filter is installed), pivot_root, and making new
//     namespaces (unshare, setns, clone with a CLONE_NEW* flag; clone3,
//     whose flags a filter cannot read, reports ENOSYS so that libc falls
//     back to clone);
//   - loading kernel code: kexec, init_module, finit_module,
//     delete_module, bpf, perf_event_open;
//   - reaching into other processes: ptrace, process_vm_readv/writev,
//     pidfd_getfd, kcmp;
//   - open_by_handle_at (which opens a file by its inode, past any mount),
//     the kernel keyring (keyctl, add_key, request_key), reboot, swapon,
//     swapoff, acct, the clock, the kernel log, quotactl, userfaultfd,
//     fanotify, vhangup, and on amd64 iopl/ioperm.
//
// System calls of another ABI than the binary's own (i386 or x32 on
// amd64) fail with ENOSYS, so the list cannot be sidestepped through them.
var deniedSyscalls = append([]uintptr{
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_MOVE_MOUNT,
	unix.SYS_OPEN_TREE, unix.SYS_FSOPEN, unix.SYS_FSCONFIG, unix.SYS_FSMOUNT,
	unix.SYS_FSPICK, unix.SYS_MOUNT_SETATTR, unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD, unix.SYS_INIT_MODULE,
	unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE, unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN,
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV,
	unix.SYS_PIDFD_GETFD, unix.SYS_KCMP,
	unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY,
	unix.SYS_REBOOT, unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_ACCT,
	unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_CLOCK_ADJTIME,
	unix.SYS_SYSLOG, unix.SYS_QUOTACTL, unix.SYS_USERFAULTFD,
	unix.SYS_FANOTIFY_INIT, unix.SYS_VHANGUP,
}, archDeniedSyscalls...)

// namespaceFlags are the clone flags that make a new namespace.
// (CLONE_NEWTIME shares its bit with clone's exit signal, and time
// namespaces can only be made through unshare, which is denied.)
const namespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// Offsets into struct seccomp_data.
const (
	seccompNr   = 0
	seccompArch = 4
	seccompArg0 = 16 // low 32 bits of args[0] on a little-endian machine
)

// filterProgram assembles the classic BPF program of the filter.
func filterProgram() ([]unix.SockFilter, error) {
	if auditArch == 0 {
		return nil, fmt.Errorf("no seccomp filter for this architecture; the untrusted sandbox needs amd64 or arm64")
	}
	ld := func(off uint32) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off}
	}
	ret := func(k uint32) unix.SockFilter { return unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k} }
	// jumpIf skips the next instruction unless A == k (jt=0, jf=1).
	jumpIfNot := func(k uint32) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jt: 0, Jf: 1}
	}
	deny := ret(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
	nosys := ret(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
	allow := ret(unix.SECCOMP_RET_ALLOW)

	p := []unix.SockFilter{
		ld(seccompArch),
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: auditArch, Jt: 1, Jf: 0},
		nosys,
		ld(seccompNr),
	}
	if x32Bit != 0 {
		// A >= x32Bit: an x32 system call.
		p = append(p, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, K: x32Bit, Jt: 0, Jf: 1}, nosys)
	}
	for _, nr := range deniedSyscalls {
		p = append(p, jumpIfNot(uint32(nr)), deny)
	}
	p = append(p, jumpIfNot(unix.SYS_CLONE3), nosys)
	// clone: deny when args[0] has a namespace flag.
	p = append(p,
		unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: unix.SYS_CLONE, Jt: 0, Jf: 3},
		ld(seccompArg0),
		unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, K: namespaceFlags, Jt: 0, Jf: 1},
		deny,
		allow,
	)
	if len(p) > 4096 {
		return nil, fmt.Errorf("seccomp filter too long (%d instructions)", len(p))
	}
	return p, nil
}

// installFilter sets no_new_privs and installs the filter on the calling
// thread; what it forks afterwards inherits both.
func installFilter() error {
	prog, err := filterProgram()
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("installing the seccomp filter: %w", errno)
	}
	return nil
}
