package sandboxtest

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// HostileBinary builds the hostile command (sandboxtest/hostile), static,
// into a temporary directory and returns its path. It needs the go
// command that runs the tests.
func HostileBinary(t testing.TB) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building the hostile command needs the go command on PATH: %v", err)
	}
	out := filepath.Join(t.TempDir(), "hostile")
	cmd := exec.Command(goCmd, "build", "-o", out, "github.com/ingotfleet/ingot/builder/sandbox/sandboxtest/hostile")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the hostile command: %v\n%s", err, b)
	}
	return out
}

// Canary is a file on one of the host's block devices, for a hostile
// command to look for on the raw disk.
type Canary struct {
	Path    string // on the host
	Secret  string // its content
	Disk    string // major:minor of the block device holding it
	RelPath string // its path from the root of that device's filesystem
}

// PlantCanary writes a canary file with a random secret in the first of
// the test's temporary directory, /var/tmp and /root whose filesystem sits
// on a block device, and removes it at the end of the test. It fails the
// test when none is on a block device.
func PlantCanary(t testing.TB) *Canary {
	t.Helper()
	secret := make([]byte, 16)
	_, _ = rand.Read(secret) // crypto/rand.Read never returns an error (Go 1.24+)
	for _, dir := range []string{t.TempDir(), "/var/tmp", "/root"} {
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil {
			continue
		}
		disk := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
		if _, err := os.Stat("/sys/dev/block/" + disk); err != nil {
			continue
		}
		d, err := os.MkdirTemp(dir, "ingot-canary")
		if err != nil {
			continue
		}
		t.Cleanup(func() { _ = os.RemoveAll(d) }) // best effort: a temporary directory
		c := &Canary{Path: filepath.Join(d, "canary"), Secret: fmt.Sprintf("ingot-canary-%x\n", secret), Disk: disk}
		if err := os.WriteFile(c.Path, []byte(c.Secret), 0o600); err != nil {
			t.Fatal(err)
		}
		c.RelPath, err = pathOnDevice(disk, c.Path)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Fatalf("none of the test's temporary directory, /var/tmp and /root is on a block device: the hostile-package test needs the host's disk to attack")
	return nil
}

// pathOnDevice turns a host path into a path from the root of the
// filesystem on device disk (major:minor), from /proc/self/mountinfo.
func pathOnDevice(disk, p string) (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	best, rel := -1, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || fields[2] != disk {
			continue
		}
		fsRoot, mountPoint := fields[3], fields[4]
		if !strings.HasPrefix(p, strings.TrimSuffix(mountPoint, "/")+"/") || len(mountPoint) <= best {
			continue
		}
		best = len(mountPoint)
		rel = strings.TrimPrefix(filepath.Join(fsRoot, strings.TrimPrefix(p, mountPoint)), "/")
	}
	if best < 0 {
		return "", fmt.Errorf("no mount of device %s holds %s", disk, p)
	}
	return rel, sc.Err()
}

// HostileVerdicts picks the lines of the hostile command's output: the
// names of the attempts that were blocked and of those that succeeded
// (with what they did).
func HostileVerdicts(out string) (blocked []string, succeeded []string) {
	for _, l := range strings.Split(out, "\n") {
		i := strings.Index(l, "hostile: ")
		if i < 0 {
			continue
		}
		name, verdict, ok := strings.Cut(l[i+len("hostile: "):], ": ")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(verdict, "blocked:"):
			blocked = append(blocked, name)
		case strings.HasPrefix(verdict, "SUCCEEDED:"):
			succeeded = append(succeeded, l[i:])
		}
	}
	return blocked, succeeded
}

// HostileAttempts are the attempts the hostile command makes (besides
// ptrace-outside, made only when given a pid).
var HostileAttempts = []string{
	"mknod-disk", "open-disk", "mount-disk", "open-by-handle", "mount-tmpfs", "new-namespaces", "remount-root",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "ptrace-init",
}
