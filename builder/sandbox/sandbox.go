package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Hostname is the host name every sandbox has unless Options says otherwise.
const Hostname = "ingot"

// Path is the PATH inside the sandbox.
const Path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// PolicyRCD is the content of the /usr/sbin/policy-rc.d Run places for the
// duration of the command: exit status 101 means "action forbidden", so
// invoke-rc.d and deb-systemd-invoke start no daemon.
const PolicyRCD = "#!/bin/sh\n# placed by ingot's sandbox: no daemon starts while an image is built\nexit 101\n"

// Bind makes a host file or directory visible inside the sandbox.
type Bind struct {
	Source   string // path on the host
	Target   string // absolute path inside the root; created (and removed afterwards) if missing
	Writable bool   // default read-only
}

// Options tune one Run. The zero value is a good default.
type Options struct {
	Stdin  io.Reader // default: empty
	Stdout io.Writer // default: discarded
	Stderr io.Writer // default: discarded

	// SourceDateEpoch is exported as SOURCE_DATE_EPOCH (seconds).
	SourceDateEpoch int64
	// Env adds KEY=VALUE pairs to the fixed environment (or replaces them).
	Env []string
	// Hostname inside the sandbox; default Hostname.
	Hostname string
	// Dir is the working directory inside the root; default "/".
	Dir string
	// Binds are bind mounts from the host, set up before the command runs.
	Binds []Bind
	// NoPolicyRCD leaves /usr/sbin/policy-rc.d alone.
	NoPolicyRCD bool
	// Loopback brings up the loopback interface of the sandbox's own,
	// otherwise empty network namespace (127.0.0.1 and ::1 work; nothing
	// else is reachable). Package builds and their test suites need it.
	Loopback bool
	// Untrusted runs the command as root of a user namespace, with the
	// root as an idmapped nodev mount, device nodes bound from the host,
	// a reduced capability set and a seccomp filter (see untrusted.go).
	// For packages under review. Needs a filesystem that supports
	// idmapped mounts under root.
	Untrusted bool
}

// ExitError is returned when the command ran and did not exit with status 0.
type ExitError struct {
	Cmd    []string
	Code   int            // exit status; 128+signal when killed by a signal
	Signal syscall.Signal // 0 unless killed by a signal
}

func (e *ExitError) Error() string {
	if e.Signal != 0 {
		return fmt.Sprintf("%s: killed by signal %v", strings.Join(e.Cmd, " "), e.Signal)
	}
	return fmt.Sprintf("%s: exit status %d", strings.Join(e.Cmd, " "), e.Code)
}

// ErrSetup is wrapped by errors that happened while building the sandbox,
// before the command could start (including "command not found").
var ErrSetup = errors.New("sandbox: setup failed")

// Environment is the environment a command sees in the sandbox, before
// Options.Env is applied.
func Environment(sourceDateEpoch int64) []string {
	return []string{
		"PATH=" + Path,
		"HOME=/root",
		"LC_ALL=C.UTF-8",
		"LANG=C.UTF-8",
		"TZ=UTC",
		"SOURCE_DATE_EPOCH=" + strconv.FormatInt(sourceDateEpoch, 10),
		"DEBIAN_FRONTEND=noninteractive",
		"DEBCONF_NONINTERACTIVE_SEEN=true",
		"TERM=dumb",
	}
}

// config is what the parent hands to the sandbox's init (as JSON in the
// environment variable initEnv).
type config struct {
	Root     string
	Cmd      []string
	Env      []string
	Hostname string
	Dir      string
	Binds    []Bind
	// Untrusted: the init receives the idmapped root on descriptor 4
	// and drops its privileges before it starts the command.
	Untrusted bool
	Loopback  bool
}

const initEnv = "_INGOT_SANDBOX_INIT"

// Run runs cmd inside root (a directory holding a root filesystem) in a
// new sandbox and waits for it. A command that exits non-zero gives an
// *ExitError; trouble building the sandbox an error wrapping ErrSetup.
// Cancelling ctx kills everything in the sandbox.
func Run(ctx context.Context, root string, cmd []string, opts Options) (err error) {
	if len(cmd) == 0 {
		return fmt.Errorf("%w: empty command", ErrSetup)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root (namespaces, mounts, pivot_root)", ErrSetup)
	}
	root, err = filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSetup, err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: root %s is not a directory", ErrSetup, root)
	}
	cfg := config{Root: root, Cmd: cmd, Hostname: opts.Hostname, Dir: opts.Dir, Binds: opts.Binds, Untrusted: opts.Untrusted, Loopback: opts.Loopback}
	if cfg.Hostname == "" {
		cfg.Hostname = Hostname
	}
	if cfg.Dir == "" {
		cfg.Dir = "/"
	}
	cfg.Env = mergeEnv(Environment(opts.SourceDateEpoch), opts.Env)

	// Mount points and policy-rc.d, created now and removed afterwards.
	created, err := prepareRoot(root, opts)
	defer func() {
		for i := len(created) - 1; i >= 0; i-- {
			if rerr := os.Remove(created[i]); rerr != nil && !os.IsNotExist(rerr) && err == nil {
				err = fmt.Errorf("sandbox: cleaning up %s: %w", created[i], rerr)
			}
		}
	}()
	if err != nil {
		return err
	}
	return runInit(ctx, root, cmd, cfg, opts)
}

// prepareRoot creates in root the mount points the init needs (/proc,
// /dev, the binds' targets) and policy-rc.d, and returns what it created,
// also on error, for the caller to remove.
func prepareRoot(root string, opts Options) (created []string, err error) {
	for _, d := range []string{"proc", "dev"} {
		c, err := ensureMountPoint(root, d, true)
		if err != nil {
			return created, err
		}
		created = append(created, c...)
	}
	if opts.Untrusted && len(opts.Binds) > 0 {
		return created, fmt.Errorf("%w: bind mounts are not supported in an untrusted sandbox", ErrSetup)
	}
	for _, b := range opts.Binds {
		fi, err := os.Stat(b.Source)
		if err != nil {
			return created, fmt.Errorf("%w: bind source: %v", ErrSetup, err)
		}
		if !filepath.IsAbs(b.Target) {
			return created, fmt.Errorf("%w: bind target %q is not absolute", ErrSetup, b.Target)
		}
		c, err := ensureMountPoint(root, b.Target, fi.IsDir())
		if err != nil {
			return created, err
		}
		created = append(created, c...)
	}
	if !opts.NoPolicyRCD {
		p, err := placePolicyRCD(root)
		if err != nil {
			return created, err
		}
		if p != "" {
			created = append(created, p)
		}
	}
	return created, nil
}

// runInit starts the sandbox's init (this program again, see init.go)
// with cfg, hands an untrusted sandbox its idmapped root, and waits.
func runInit(ctx context.Context, root string, cmd []string, cfg config, opts Options) error {
	blob, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSetup, err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSetup, err)
	}
	defer statusR.Close()
	// An untrusted sandbox's init gets its root mount over a socket once
	// its user namespace exists.
	var mountSock, initSock *os.File
	if opts.Untrusted {
		mountSock, initSock, err = untrustedSockets()
		if err != nil {
			_ = statusW.Close() // the init never started: nothing reads the pipe
			return err
		}
		// The root is sent (or the init killed) by the time this runs:
		// nothing is left in the socket for a close to lose.
		defer func() { _ = mountSock.Close() }()
	}
	c := initCommand(ctx, blob, statusW, initSock, opts)
	err = c.Start()
	// The init holds its own copies now (or never started); ours must go
	// for the status read to end when the init exits. Closing an
	// unwritten pipe end or socket has nothing to report.
	_ = statusW.Close()
	if initSock != nil {
		_ = initSock.Close()
	}
	if err != nil {
		return fmt.Errorf("%w: starting init: %v", ErrSetup, err)
	}
	if opts.Untrusted {
		if err := handOverRoot(c, root, mountSock); err != nil {
			return err
		}
	}
	var status bytes.Buffer
	readDone := make(chan struct{})
	go func() {
		// A failed read only shortens the init's message; its exit
		// status below still tells success from failure.
		_, _ = io.Copy(&status, statusR)
		close(readDone)
	}()
	werr := c.Wait()
	<-readDone
	if ctx.Err() != nil {
		return fmt.Errorf("sandbox: %s: %w", strings.Join(cmd, " "), ctx.Err())
	}
	if msg := strings.TrimSpace(status.String()); msg != "" {
		return fmt.Errorf("%w: %s", ErrSetup, msg)
	}
	if werr != nil {
		return exitError(cmd, werr)
	}
	return nil
}

// untrustedSockets checks an untrusted sandbox can be built (seccomp
// filter, stage directory) and makes the socket pair over which the init
// receives its root: ours first, the init's second.
func untrustedSockets() (mountSock, initSock *os.File, err error) {
	if _, err := filterProgram(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	if err := ensureStageDir(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	return os.NewFile(uintptr(fds[0]), "mount"), os.NewFile(uintptr(fds[1]), "mount-init"), nil
}

// initCommand is the command that starts the sandbox's init in new
// namespaces: status is its descriptor 3, initSock (untrusted only) 4.
func initCommand(ctx context.Context, blob []byte, status, initSock *os.File, opts Options) *exec.Cmd {
	c := exec.CommandContext(ctx, "/proc/self/exe")
	c.Args = []string{"ingot-sandbox-init"}
	c.Env = []string{initEnv + "=" + string(blob)}
	c.Stdin, c.Stdout, c.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	c.ExtraFiles = []*os.File{status}
	c.WaitDelay = 5 * time.Second
	c.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS |
			syscall.CLONE_NEWIPC | syscall.CLONE_NEWNET,
		Pdeathsig: syscall.SIGKILL,
	}
	if opts.Untrusted {
		c.ExtraFiles = append(c.ExtraFiles, initSock)
		c.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		c.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: HostIDBase, Size: IDCount}}
		c.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: HostIDBase, Size: IDCount}}
		c.SysProcAttr.GidMappingsEnableSetgroups = true
		// Become root of the new namespace (the host's root has no id
		// in it), so that the exec'd init has its capabilities.
		c.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	return c
}

// handOverRoot sends the started init of an untrusted sandbox its root as
// an idmapped mount. On failure it kills the init, which waits for that
// root.
func handOverRoot(c *exec.Cmd, root string, mountSock *os.File) error {
	fd, err := idmappedRoot(root, c.Process.Pid)
	if err == nil {
		err = sendFD(mountSock, fd)
		_ = syscall.Close(fd) // sent or not, our copy of the mount is done with
	}
	if err != nil {
		// err is the story: the killed init's exit says nothing more.
		_ = c.Process.Kill()
		_ = c.Wait()
		return fmt.Errorf("%w: %v", ErrSetup, err)
	}
	return nil
}

// exitError turns the init's failed wait into an *ExitError carrying the
// command's exit code (the init exits with it, 128+n for signal n).
func exitError(cmd []string, werr error) error {
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return &ExitError{Cmd: cmd, Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
		}
		code := ws.ExitStatus()
		if code > 128 && code < 128+65 {
			return &ExitError{Cmd: cmd, Code: code, Signal: syscall.Signal(code - 128)}
		}
		return &ExitError{Cmd: cmd, Code: code}
	}
	return fmt.Errorf("sandbox: %s: %w", strings.Join(cmd, " "), werr)
}

// mergeEnv applies extra KEY=VALUE pairs over base.
func mergeEnv(base, extra []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, b := range out {
			if bk, _, _ := strings.Cut(b, "="); bk == k {
				out[i], replaced = kv, true
				break
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// ensureMountPoint makes root/rel exist as a directory (or an empty file)
// without following any symlink of the root, and returns what it created,
// parents first.
func ensureMountPoint(root, rel string, dir bool) ([]string, error) {
	rel = strings.Trim(filepath.Clean("/"+rel), "/")
	if rel == "" {
		return nil, fmt.Errorf("%w: cannot mount over the root itself", ErrSetup)
	}
	parts := strings.Split(rel, "/")
	var created []string
	p := root
	for i, part := range parts {
		p = filepath.Join(p, part)
		last := i == len(parts)-1
		fi, err := os.Lstat(p)
		switch {
		case err == nil && fi.Mode()&os.ModeSymlink != 0:
			return created, fmt.Errorf("%w: %s is a symlink; refusing to mount through it", ErrSetup, p)
		case err == nil && (!last || dir) && !fi.IsDir():
			return created, fmt.Errorf("%w: %s is not a directory", ErrSetup, p)
		case err == nil && last && !dir && !fi.Mode().IsRegular():
			return created, fmt.Errorf("%w: %s is not a regular file", ErrSetup, p)
		case err == nil:
			continue
		case !os.IsNotExist(err):
			return created, fmt.Errorf("%w: %v", ErrSetup, err)
		}
		if !last || dir {
			err = os.Mkdir(p, 0o755)
		} else {
			var f *os.File
			f, err = os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err == nil {
				err = f.Close()
			}
		}
		if err != nil {
			return created, fmt.Errorf("%w: creating mount point: %v", ErrSetup, err)
		}
		created = append(created, p)
	}
	return created, nil
}

// placePolicyRCD writes usr/sbin/policy-rc.d when the root has a real
// usr/sbin directory and no policy-rc.d yet; it returns the path written.
func placePolicyRCD(root string) (string, error) {
	dir := root
	for _, part := range []string{"usr", "sbin"} {
		dir = filepath.Join(dir, part)
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() {
			return "", nil // no usr/sbin (yet): nothing to protect
		}
	}
	p := filepath.Join(dir, "policy-rc.d")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if os.IsExist(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%w: writing policy-rc.d: %v", ErrSetup, err)
	}
	_, err = f.WriteString(PolicyRCD)
	if err == nil {
		err = f.Chmod(0o755)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// Best effort: the write's error is the one to report, and a
		// half-written policy-rc.d left behind would be found by the
		// next build's O_EXCL create as if it were the root's own.
		_ = os.Remove(p)
		return "", fmt.Errorf("%w: writing policy-rc.d: %v", ErrSetup, err)
	}
	return p, nil
}
