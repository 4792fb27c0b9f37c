package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The sandbox's init: when the marker is in the environment this process
// is pid 1 of a new set of namespaces, started by Run.
func init() {
	blob, ok := os.LookupEnv(initEnv)
	if !ok {
		return
	}
	syscall.CloseOnExec(3) // the command must not hold the status pipe
	status := os.NewFile(3, "status")
	var cfg config
	if err := json.Unmarshal([]byte(blob), &cfg); err != nil {
		tell(status, "reading config: %v", err)
		os.Exit(125)
	}
	os.Exit(initMain(&cfg, status))
}

// tell writes the init's failure to the status pipe for Run to report.
// The exit code that follows marks the failure as well, so a write that
// fails (the parent gone) loses only the message.
func tell(status *os.File, format string, args ...any) {
	_, _ = fmt.Fprintf(status, format, args...)
}

// device is a node of the sandbox's /dev.
type device struct {
	name         string
	major, minor uint32
}

var devices = []device{
	{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8},
	{"urandom", 1, 9}, {"tty", 5, 0}, {"console", 5, 1},
}

var devLinks = [][2]string{
	{"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
	{"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"},
}

func initMain(cfg *config, status *os.File) int {
	var err error
	if cfg.Untrusted {
		syscall.CloseOnExec(4)
		sock := os.NewFile(4, "mount")
		err = setup(cfg, sock)
		_ = sock.Close() // the root arrived (or not: err says so); the socket is done with
	} else {
		err = setup(cfg, nil)
	}
	if err != nil {
		tell(status, "%v", err)
		return 125
	}
	argv0, err := lookPath(cfg.Cmd[0])
	if err != nil {
		tell(status, "%v", err)
		return 127
	}
	syscall.Umask(0o022)
	pid, err := syscall.ForkExec(argv0, cfg.Cmd, &syscall.ProcAttr{
		Dir:   cfg.Dir,
		Env:   cfg.Env,
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		tell(status, "starting %s: %v", cfg.Cmd[0], err)
		return 127
	}
	// Nothing written: closing our end only tells the parent that the
	// command is running.
	_ = status.Close()
	// Reap every process that ends up with us (orphans re-parent to pid
	// 1) until the command itself exits; the kernel kills the rest of the
	// pid namespace when we return.
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 125
		}
		if wpid != pid {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
}

// setup builds the sandbox around root and pivots into it. An untrusted
// sandbox (sock set) gets its root as an idmapped mount over sock, /dev
// nodes bound from the host instead of made, and drops its privileges
// last.
func setup(cfg *config, sock *os.File) error {
	root := cfg.Root
	// Nothing we mount may propagate back to the host.
	if err := mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return err
	}
	if sock != nil {
		// The root's own path is out of reach (a user namespace cannot
		// search directories that only the host's root may enter): the
		// idmapped tree goes on the stage directory instead.
		root = StageDir
		if err := attachRoot(sock, root); err != nil {
			return err
		}
	} else if err := mount(root, root, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return err
	}
	for _, d := range []string{"proc", "dev"} {
		if err := realDir(root, d); err != nil {
			return err
		}
	}
	if err := mount("proc", filepath.Join(root, "proc"), "proc",
		syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return err
	}
	if err := mountDev(filepath.Join(root, "dev"), sock != nil); err != nil {
		return err
	}
	if err := mountBinds(root, cfg.Binds); err != nil {
		return err
	}
	if err := syscall.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	if err := syscall.Setdomainname([]byte("(none)")); err != nil {
		return fmt.Errorf("setdomainname: %w", err)
	}
	if cfg.Loopback {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	if err := pivotInto(root); err != nil {
		return err
	}
	if sock != nil {
		return dropPrivileges()
	}
	return nil
}

// mount is syscall.Mount with an error naming what went where.
func mount(src, target, fstype string, flags uintptr, data string) error {
	if err := syscall.Mount(src, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mounting %s on %s: %w", fstype+src, target, err)
	}
	return nil
}

// mountDev puts a fresh /dev on dev: a tmpfs with the device nodes (made,
// or for an untrusted sandbox bound from the host's /dev), their links,
// a private devpts and /dev/shm.
func mountDev(dev string, untrusted bool) error {
	if untrusted {
		if err := mount("tmpfs", dev, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, "mode=755,size=65536k"); err != nil {
			return err
		}
		if err := untrustedDev(dev, "/dev"); err != nil {
			return err
		}
	} else {
		if err := mount("tmpfs", dev, "tmpfs", syscall.MS_NOSUID, "mode=755,size=65536k"); err != nil {
			return err
		}
		if err := makeDevices(dev); err != nil {
			return err
		}
	}
	for _, l := range devLinks {
		if err := os.Symlink(l[1], filepath.Join(dev, l[0])); err != nil {
			return err
		}
	}
	for _, d := range []string{"pts", "shm"} {
		if err := os.Mkdir(filepath.Join(dev, d), 0o755); err != nil {
			return err
		}
	}
	if err := mount("devpts", filepath.Join(dev, "pts"), "devpts", syscall.MS_NOSUID|syscall.MS_NOEXEC,
		"newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return err
	}
	return mount("tmpfs", filepath.Join(dev, "shm"), "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV,
		"mode=1777,size=65536k")
}

// mountBinds binds each of binds into root, read-only unless Writable,
// refusing a target reached through a symlink.
func mountBinds(root string, binds []Bind) error {
	for _, b := range binds {
		rel := strings.TrimPrefix(filepath.Clean(b.Target), "/")
		if err := noSymlinks(root, rel); err != nil {
			return err
		}
		t := filepath.Join(root, rel)
		if err := mount(b.Source, t, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return err
		}
		if !b.Writable {
			if err := mount("", t, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY|syscall.MS_REC, ""); err != nil {
				return err
			}
		}
	}
	return nil
}

// pivotInto makes root the root: pivot_root with the old root stacked
// under the new one, then detached, so that afterwards nothing of the
// host's tree is reachable.
func pivotInto(root string) error {
	if err := syscall.Chdir(root); err != nil {
		return fmt.Errorf("chdir %s: %w", root, err)
	}
	if err := syscall.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", root, err)
	}
	if err := syscall.Unmount(".", syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host's root: %w", err)
	}
	return syscall.Chdir("/")
}

// makeDevices makes the device nodes of a privileged sandbox's /dev.
func makeDevices(dev string) error {
	for _, d := range devices {
		p := filepath.Join(dev, d.name)
		if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, int(d.major<<8|d.minor)); err != nil {
			return fmt.Errorf("mknod %s: %w", p, err)
		}
		if err := os.Chmod(p, 0o666); err != nil {
			return err
		}
	}
	return nil
}

// realDir checks that root/rel is a directory reached through no symlink.
func realDir(root, rel string) error {
	if err := noSymlinks(root, rel); err != nil {
		return err
	}
	fi, err := os.Lstat(filepath.Join(root, rel))
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", filepath.Join(root, rel))
	}
	return nil
}

// noSymlinks checks that no component of root/rel is a symlink.
func noSymlinks(root, rel string) error {
	p := root
	for _, part := range strings.Split(rel, "/") {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symlink; refusing to mount through it", p)
		}
	}
	return nil
}

// lookPath finds a command in the sandbox's PATH (we are inside the root
// by now, so this searches the image, not the host).
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(Path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: command not found in the image (PATH=%s)", name, Path)
}

// loopbackUp sets IFF_UP on "lo" of the sandbox's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: reading flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback: bringing lo up: %w", err)
	}
	return nil
}
