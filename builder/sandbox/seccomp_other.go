//go:build !amd64 && !arm64

package sandbox

// No filter is written for this architecture: Run refuses an untrusted
// sandbox here rather than run it without one.
const auditArch = 0

const x32Bit = 0

var archDeniedSyscalls []uintptr
