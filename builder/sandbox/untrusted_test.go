package sandbox_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ingotfleet/ingot/builder/sandbox"
	"github.com/ingotfleet/ingot/builder/sandbox/sandboxtest"
	"github.com/ingotfleet/ingot/internal/testenv"
	"golang.org/x/sys/unix"
)

// TestUntrustedContainsHostileCommand runs, as root of an untrusted
// sandbox, a command that tries to reach the host's disk (mknod, open,
// mount, open_by_handle_at of the filesystem's root), mount anything,
// load kernel code and ptrace the sandbox's init and the test itself.
// Every attempt must fail, and the canary file on the host's disk must
// be unchanged. (A privileged sandbox lets most of them through.)
func TestUntrustedContainsHostileCommand(t *testing.T) {
	testenv.RequireRoot(t)
	hostile := sandboxtest.HostileBinary(t)
	canary := sandboxtest.PlantCanary(t)
	root := sandboxtest.MiniRoot(t, "sh")
	data, err := os.ReadFile(hostile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/bin/hostile"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	// A node of the disk already in the image, as a package could ship.
	var major, minor uint32
	fmt.Sscanf(canary.Disk, "%d:%d", &major, &minor)
	if err := unix.Mknod(filepath.Join(root, "root/disk"), unix.S_IFBLK|0o666, int(unix.Mkdev(major, minor))); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, root, sandbox.Options{Untrusted: true},
		"hostile", "-disk", canary.Disk, "-canary", canary.RelPath, "-pid", strconv.Itoa(os.Getpid()), "-node", "/root/disk")
	t.Logf("hostile command:\n%s", out)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	blocked, succeeded := sandboxtest.HostileVerdicts(out)
	for _, s := range succeeded {
		t.Errorf("escaped the sandbox: %s", s)
	}
	for _, a := range append(slices.Clone(sandboxtest.HostileAttempts), "ptrace-outside", "open-planted-node") {
		if !slices.Contains(blocked, a) {
			t.Errorf("attempt %s was not reported blocked", a)
		}
	}
	// The root is mounted nodev.
	if !strings.Contains(out, "hostile: open-planted-node: blocked: open /root/disk: permission denied\n") {
		t.Errorf("opening the disk's node planted in the root was not refused with EACCES (nodev)")
	}
	// The filter answers EPERM before the kernel looks at the call (a
	// kernel built without kexec or modules would say ENOSYS).
	for _, a := range []string{"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "ptrace-init", "ptrace-outside"} {
		if !strings.Contains(out, "hostile: "+a+": blocked: operation not permitted\n") {
			t.Errorf("attempt %s was not refused with EPERM", a)
		}
	}
	if got, err := os.ReadFile(canary.Path); err != nil || string(got) != canary.Secret {
		t.Errorf("the canary changed: %q, %v", got, err)
	}
	for _, want := range []string{"hostile: Uid: 0 0 0 0", "hostile: NoNewPrivs: 1", "hostile: Seccomp: 2"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestUntrustedOwnership: files made and chowned by root of the user
// namespace land on disk with the ids they have inside (the idmapped
// root), and the host's ids are not visible through the namespace.
func TestUntrustedOwnership(t *testing.T) {
	testenv.RequireRoot(t)
	root := sandboxtest.MiniRoot(t, "sh", "touch", "chown", "mkdir", "cat", "id")
	out, err := run(t, root, sandbox.Options{Untrusted: true}, "sh", "-ec",
		"touch /etc/made; mkdir /etc/d; chown 100:200 /etc/d; id -u; cat /proc/self/uid_map")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if f := strings.Fields(out); len(f) != 4 || f[0] != "0" || f[1] != "0" || f[2] != strconv.Itoa(sandbox.HostIDBase) || f[3] != strconv.Itoa(sandbox.IDCount) {
		t.Errorf("id and uid_map inside: %q, want 0 and 0 %d %d", out, sandbox.HostIDBase, sandbox.IDCount)
	}
	for p, want := range map[string][2]uint32{"etc/made": {0, 0}, "etc/d": {100, 200}} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(root, p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != want[0] || st.Gid != want[1] {
			t.Errorf("%s is owned by %d:%d on disk, want %d:%d", p, st.Uid, st.Gid, want[0], want[1])
		}
	}
}

// TestUntrustedRefusesBinds: bind mounts of host paths are not offered in
// an untrusted sandbox; Run says so before it starts anything.
func TestUntrustedRefusesBinds(t *testing.T) {
	testenv.RequireRoot(t)
	root := sandboxtest.MiniRoot(t, "sh")
	_, err := run(t, root, sandbox.Options{Untrusted: true, Binds: []sandbox.Bind{{Source: t.TempDir(), Target: "/mnt"}}}, "true")
	if !errors.Is(err, sandbox.ErrSetup) || !strings.Contains(err.Error(), "not supported in an untrusted sandbox") {
		t.Fatalf("err = %v, want a setup error refusing binds", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "mnt")); err == nil {
		t.Errorf("the refused bind left its mount point behind")
	}
}
