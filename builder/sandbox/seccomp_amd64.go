package sandbox

import "golang.org/x/sys/unix"

const auditArch = unix.AUDIT_ARCH_X86_64

// x32Bit marks the system calls of the x32 ABI.
const x32Bit = 0x40000000

var archDeniedSyscalls = []uintptr{unix.SYS_IOPL, unix.SYS_IOPERM}
