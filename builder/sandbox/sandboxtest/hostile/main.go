package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// main is one long list of attempts, each a report call, in the order the
// sandbox's tests read them: split up it would only scatter the list. An
// attacker has no use for a failed cleanup, so those errors are dropped.
func main() {
	runtime.LockOSThread()
	disk := flag.String("disk", "", "major:minor of the host's disk")
	canary := flag.String("canary", "", "path of the canary file, relative to the root of the disk's filesystem")
	hostPid := flag.Int("pid", 0, "a process outside the sandbox, by its host pid")
	planted := flag.String("node", "", "a node of the host's disk already in the root, to open")
	exit := flag.Bool("exit", false, "exit at once (the child of the namespace attempt)")
	flag.Parse()
	if *exit {
		return
	}
	var major, minor uint32
	if _, err := fmt.Sscanf(*disk, "%d:%d", &major, &minor); err != nil {
		fmt.Fprintf(os.Stderr, "hostile: -disk %q: %v\n", *disk, err)
		os.Exit(2)
	}
	status, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "CapEff:") || strings.HasPrefix(l, "Seccomp:") || strings.HasPrefix(l, "NoNewPrivs:") {
			fmt.Printf("hostile: %s\n", strings.Join(strings.Fields(l), " "))
		}
	}

	node := "/tmp/ingot-hostile-disk"
	_ = os.Remove(node)
	report("mknod-disk", func() (string, error) {
		err := unix.Mknod(node, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor)))
		return "made a node of the host's disk " + *disk, err
	})
	report("open-disk", func() (string, error) {
		f, err := os.Open(node)
		if err != nil {
			return "", err
		}
		defer f.Close()
		buf := make([]byte, 4096)
		n, err := f.Read(buf)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("read %d bytes of the host's disk", n), nil
	})
	if *planted != "" {
		report("open-planted-node", func() (string, error) {
			f, err := os.Open(*planted)
			if err != nil {
				return "", err
			}
			defer f.Close()
			buf := make([]byte, 4096)
			n, err := f.Read(buf)
			return fmt.Sprintf("read %d bytes of the host's disk through %s", n, *planted), err
		})
	}
	mnt := "/tmp/ingot-hostile-mnt"
	_ = os.MkdirAll(mnt, 0o700)
	report("mount-disk", func() (string, error) {
		var errs []error
		for _, fs := range blockFilesystems() {
			err := unix.Mount(node, mnt, fs, 0, "")
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", fs, err))
				continue
			}
			defer func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) }()
			what := "mounted the host's disk as " + fs
			if shadow, err := os.ReadFile(filepath.Join(mnt, "etc/shadow")); err == nil {
				first, _, _ := bytes.Cut(shadow, []byte("\n"))
				what += fmt.Sprintf("; read the host's /etc/shadow: %q", first)
			}
			if *canary != "" {
				if secret, err := os.ReadFile(filepath.Join(mnt, *canary)); err == nil {
					what += fmt.Sprintf("; read the canary: %q", secret)
				}
				if f, err := os.OpenFile(filepath.Join(mnt, *canary), os.O_WRONLY|os.O_APPEND, 0); err == nil {
					_, _ = f.WriteString("hostile was here\n")
					_ = f.Close()
					what += "; wrote to the canary"
				}
			}
			return what, nil
		}
		return "", errors.Join(errs...)
	})
	report("open-by-handle", func() (string, error) {
		// The root directory of an ext4 filesystem is inode 2: a handle
		// of it, opened through any file of that filesystem (the
		// sandbox's root is one), is the host's root, past pivot_root.
		dir, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return "", err
		}
		defer unix.Close(dir)
		h := unix.NewFileHandle(1 /* FILEID_INO32_GEN */, []byte{2, 0, 0, 0, 0, 0, 0, 0})
		fd, err := unix.OpenByHandleAt(dir, h, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return "", err
		}
		defer unix.Close(fd)
		what := "opened the host filesystem's root by its handle"
		if s, err := unix.Openat(fd, "etc/shadow", unix.O_RDONLY, 0); err == nil {
			buf := make([]byte, 64)
			n, _ := unix.Read(s, buf)
			_ = unix.Close(s)
			first, _, _ := bytes.Cut(buf[:max(n, 0)], []byte("\n"))
			what += fmt.Sprintf("; read the host's /etc/shadow: %q", first)
		}
		return what, nil
	})
	report("mount-tmpfs", func() (string, error) {
		err := unix.Mount("none", mnt, "tmpfs", 0, "size=1m")
		if err == nil {
			_ = unix.Unmount(mnt, unix.MNT_DETACH)
		}
		return "mounted a tmpfs", err
	})
	report("new-namespaces", func() (string, error) {
		// A user namespace of its own would give back every capability
		// (over that namespace), and with it mount.
		self, err := os.Executable()
		if err != nil {
			return "", err
		}
		cmd := exec.Command(self, "-exit")
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		}
		return "started a process in new user and mount namespaces", cmd.Run()
	})
	report("remount-root", func() (string, error) {
		return "remounted the root", unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND, "")
	})
	// For the kernel-code calls, any error but EPERM means the
	// permission check passed and the call reached its arguments.
	reached := func(what string, nr uintptr, a ...uintptr) func() (string, error) {
		return func() (string, error) {
			args := append(a, 0, 0, 0, 0, 0, 0)
			_, _, errno := unix.Syscall6(nr, args[0], args[1], args[2], args[3], args[4], args[5])
			if errno == unix.EPERM || errno == unix.ENOSYS {
				return "", errno
			}
			return fmt.Sprintf("%s (the kernel answered %q, past the permission check)", what, errString(errno)), nil
		}
	}
	report("kexec_load", reached("kexec_load is allowed", unix.SYS_KEXEC_LOAD, 0, 0, 0, 0))
	report("kexec_file_load", reached("kexec_file_load is allowed", unix.SYS_KEXEC_FILE_LOAD, ^uintptr(0), ^uintptr(0), 0, 0, 1 /* KEXEC_FILE_UNLOAD */))
	empty := []byte{0}
	report("init_module", reached("init_module is allowed", unix.SYS_INIT_MODULE, 0, 0, uintptr(unsafe.Pointer(&empty[0]))))
	report("finit_module", reached("finit_module is allowed", unix.SYS_FINIT_MODULE, ^uintptr(0), uintptr(unsafe.Pointer(&empty[0])), 0))
	name := []byte("ingot_no_such_module\x00")
	report("delete_module", reached("delete_module is allowed", unix.SYS_DELETE_MODULE, uintptr(unsafe.Pointer(&name[0])), unix.O_NONBLOCK))
	report("ptrace-init", func() (string, error) {
		if err := unix.PtraceAttach(1); err != nil {
			return "", err
		}
		var ws unix.WaitStatus
		_, _ = unix.Wait4(1, &ws, unix.WALL, nil)
		_ = unix.PtraceDetach(1)
		return "attached to the sandbox's init (pid 1), which set the sandbox up", nil
	})
	if *hostPid != 0 {
		report("ptrace-outside", func() (string, error) {
			if err := unix.PtraceAttach(*hostPid); err != nil {
				return "", err
			}
			_ = unix.PtraceDetach(*hostPid)
			return fmt.Sprintf("attached to host process %d", *hostPid), nil
		})
	}
	_ = os.Remove(node)
	_ = os.Remove(mnt)
}

func report(name string, attempt func() (string, error)) {
	what, err := attempt()
	if err != nil {
		fmt.Printf("hostile: %s: blocked: %v\n", name, err)
		return
	}
	fmt.Printf("hostile: %s: SUCCEEDED: %s\n", name, what)
}

func errString(errno unix.Errno) string {
	if errno == 0 {
		return "ok"
	}
	return errno.Error()
}

// blockFilesystems lists the kernel's filesystems that need a device.
func blockFilesystems() []string {
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return []string{"ext4", "xfs", "btrfs"}
	}
	var fss []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) == 1 {
			fss = append(fss, f[0])
		}
	}
	return fss
}
