package differ

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// capNames are the Linux capability names by number, as getcap(8) prints them.
var capNames = [...]string{
	"cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid",
	"cap_kill", "cap_setgid", "cap_setuid", "cap_setpcap", "cap_linux_immutable",
	"cap_net_bind_service", "cap_net_broadcast", "cap_net_admin", "cap_net_raw", "cap_ipc_lock",
	"cap_ipc_owner", "cap_sys_module", "cap_sys_rawio", "cap_sys_chroot", "cap_sys_ptrace",
	"cap_sys_pacct", "cap_sys_admin", "cap_sys_boot", "cap_sys_nice", "cap_sys_resource",
	"cap_sys_time", "cap_sys_tty_config", "cap_mknod", "cap_lease", "cap_audit_write",
	"cap_audit_control", "cap_setfcap", "cap_mac_override", "cap_mac_admin", "cap_syslog",
	"cap_wake_alarm", "cap_block_suspend", "cap_audit_read", "cap_perfmon", "cap_bpf",
	"cap_checkpoint_restore",
}

// Layout of struct vfs_cap_data (linux/capability.h).
const (
	vfsCapRevisionMask   = 0xff000000
	vfsCapRevision1      = 0x01000000
	vfsCapRevision2      = 0x02000000
	vfsCapRevision3      = 0x03000000
	vfsCapFlagsEffective = 0x000001
)

// DecodeCapability turns the raw value of a security.capability xattr into
// text like getcap's: "cap_net_admin,cap_net_raw=ep", with " [rootid=N]"
// for a version 3 (namespaced) value. A value it cannot read is an error.
func DecodeCapability(v []byte) (string, error) {
	if len(v) < 4 {
		return "", fmt.Errorf("security.capability: %d bytes, too short", len(v))
	}
	magic := binary.LittleEndian.Uint32(v)
	var words int
	switch magic & vfsCapRevisionMask {
	case vfsCapRevision1:
		words = 1
		if len(v) != 12 {
			return "", fmt.Errorf("security.capability v1: %d bytes, want 12", len(v))
		}
	case vfsCapRevision2:
		words = 2
		if len(v) != 20 {
			return "", fmt.Errorf("security.capability v2: %d bytes, want 20", len(v))
		}
	case vfsCapRevision3:
		words = 2
		if len(v) != 24 {
			return "", fmt.Errorf("security.capability v3: %d bytes, want 24", len(v))
		}
	default:
		return "", fmt.Errorf("security.capability: unknown revision %#x", magic&vfsCapRevisionMask)
	}
	if magic&^(vfsCapRevisionMask|vfsCapFlagsEffective) != 0 {
		return "", fmt.Errorf("security.capability: unknown flags %#x", magic&^vfsCapRevisionMask)
	}
	effective := magic&vfsCapFlagsEffective != 0
	var perm, inh uint64
	for w := 0; w < words; w++ {
		perm |= uint64(binary.LittleEndian.Uint32(v[4+8*w:])) << (32 * w)
		inh |= uint64(binary.LittleEndian.Uint32(v[8+8*w:])) << (32 * w)
	}
	// Group capabilities by their flags, in the order of the first
	// capability that has each set of flags, as cap_to_text does.
	var order []string
	byFlags := map[string][]string{}
	for c := 0; c < 64; c++ {
		p, i := perm&(1<<c) != 0, inh&(1<<c) != 0
		if !p && !i {
			continue
		}
		var f strings.Builder
		if effective {
			f.WriteByte('e')
		}
		if i {
			f.WriteByte('i')
		}
		if p {
			f.WriteByte('p')
		}
		name := "cap_" + strconv.Itoa(c)
		if c < len(capNames) {
			name = capNames[c]
		}
		if _, ok := byFlags[f.String()]; !ok {
			order = append(order, f.String())
		}
		byFlags[f.String()] = append(byFlags[f.String()], name)
	}
	var parts []string
	for _, f := range order {
		parts = append(parts, strings.Join(byFlags[f], ",")+"="+f)
	}
	s := strings.Join(parts, " ")
	if s == "" {
		s = "(no capabilities)"
		if effective {
			s += " effective"
		}
	}
	if magic&vfsCapRevisionMask == vfsCapRevision3 {
		s += " [rootid=" + strconv.FormatUint(uint64(binary.LittleEndian.Uint32(v[20:])), 10) + "]"
	}
	return s, nil
}
