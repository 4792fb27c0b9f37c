package triggers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// MaxOutput is how much of a trigger's combined output is kept.
const MaxOutput = 64 << 10

// Result is what one trigger run did.
type Result struct {
	Name     string        `json:"name"`
	Phase    Phase         `json:"phase"`
	Paths    int           `json:"paths"`
	Output   string        `json:"output,omitempty"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration"`
}

// Env is what a trigger's command is given.
type Env struct {
	// Root is the root filesystem the sync wrote (INGOT_ROOT); commands run
	// with it as the working directory.
	Root string
	// Image is the digest of the image being synced to (INGOT_IMAGE).
	Image string
	// Dir is a scratch directory for the changed-path lists.
	Dir string
	// Extra is added to the environment ("KEY=value").
	Extra []string
	// Chroot runs the commands chrooted into Root (a root slot that is
	// not booted): INGOT_ROOT is then "/", the command is looked up in
	// the root's own /usr/sbin, /usr/bin, /sbin and /bin, and Dir must be
	// beneath Root.
	Chroot bool
}

// Error is returned when a trigger fails or times out.
type Error struct {
	Name   string
	Output string
	Err    error
}

func (e *Error) Error() string {
	out := strings.TrimSpace(e.Output)
	if len(out) > 2000 {
		out = "…" + out[len(out)-2000:]
	}
	if out == "" {
		return fmt.Sprintf("trigger %s: %v", e.Name, e.Err)
	}
	return fmt.Sprintf("trigger %s: %v; output:\n%s", e.Name, e.Err, out)
}

func (e *Error) Unwrap() error { return e.Err }

// ErrTimeout is wrapped by the error of a trigger that ran out of time.
var ErrTimeout = errors.New("timed out")

// Run runs the matches in order. Each command gets its changed paths
// (one per line, relative to the root) on stdin and in the file named by
// INGOT_CHANGED_FILE, plus INGOT_ROOT, INGOT_IMAGE, INGOT_TRIGGER and
// INGOT_PHASE. A command that exits non-zero or outlives its timeout
// (its whole process group is killed) stops the run: the results so far
// and an *Error are returned.
func Run(ctx context.Context, matches []Match, env Env) ([]Result, error) {
	var results []Result
	for _, m := range matches {
		res, err := runOne(ctx, m, env)
		results = append(results, res)
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

func runOne(ctx context.Context, m Match, env Env) (Result, error) {
	r := m.Rule
	res := Result{Name: r.Name, Phase: r.Phase, Paths: len(m.Paths)}
	list := strings.Join(m.Paths, "\n") + "\n"
	dir := env.Dir
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "trigger-"+r.Name+"-*.list")
	if err != nil {
		return res, fmt.Errorf("trigger %s: writing changed paths: %w", r.Name, err)
	}
	defer func() { _ = os.Remove(f.Name()) }() // a scratch list of paths
	if _, err := f.WriteString(list); err != nil {
		_ = f.Close()
		return res, fmt.Errorf("trigger %s: writing changed paths: %w", r.Name, err)
	}
	if err := f.Close(); err != nil {
		return res, fmt.Errorf("trigger %s: writing changed paths: %w", r.Name, err)
	}

	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := GroupCommand(cctx, r.Command)
	root := env.Root
	if root == "" {
		root = "/"
	}
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	cmd.Dir = root
	listName := f.Name()
	ingotRoot := root
	if env.Chroot {
		rel, err := filepath.Rel(root, listName)
		if err != nil || strings.HasPrefix(rel, "..") {
			return res, fmt.Errorf("trigger %s: the changed-path list %s is outside the root %s", r.Name, listName, root)
		}
		listName, ingotRoot = "/"+filepath.ToSlash(rel), "/"
		cmd.Path = chrootLookPath(root, r.Command[0])
		cmd.Err = nil
		cmd.SysProcAttr.Chroot = root
		cmd.Dir = "/"
	}
	cmd.Stdin = strings.NewReader(list)
	out := &capped{max: MaxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(),
		"INGOT_ROOT="+ingotRoot,
		"INGOT_IMAGE="+env.Image,
		"INGOT_TRIGGER="+r.Name,
		"INGOT_PHASE="+string(r.Phase),
		"INGOT_CHANGED_FILE="+listName,
	)
	cmd.Env = append(cmd.Env, env.Extra...)
	start := time.Now()
	err = cmd.Run()
	res.Duration = time.Since(start)
	res.Output = out.String()
	if err != nil {
		if cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
			err = fmt.Errorf("%w after %s", ErrTimeout, timeout)
		}
		res.Error = err.Error()
		return res, &Error{Name: r.Name, Output: res.Output, Err: err}
	}
	return res, nil
}

// chrootLookPath finds name in the chroot's own PATH directories; the
// path returned is inside the chroot. A name that is not found is
// returned as it is, and the command fails with its error.
func chrootLookPath(root, name string) string {
	if strings.Contains(name, "/") {
		return name
	}
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		// This look follows symlinks from outside the chroot (an
		// absolute link may point at the host's file); it only picks
		// the name: the exec itself resolves it inside the chroot.
		p := filepath.Join(d, name)
		if fi, err := os.Stat(filepath.Join(root, p)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}

// GroupCommand is argv in a process group of its own: when ctx ends the
// whole group is killed (a command's children too, so none outlives its
// timeout holding the output pipes), and Wait gives up on the pipes 2 s
// later. Triggers, the agent's check commands and slot health checks run
// through it.
func GroupCommand(ctx context.Context, argv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// capped keeps the last max bytes written to it.
type capped struct {
	buf     bytes.Buffer
	max     int
	dropped bool
}

func (c *capped) Write(p []byte) (int, error) {
	n := len(p)
	c.buf.Write(p)
	if c.buf.Len() > c.max {
		b := c.buf.Bytes()
		keep := append([]byte(nil), b[len(b)-c.max:]...)
		c.buf.Reset()
		c.buf.Write(keep)
		c.dropped = true
	}
	return n, nil
}

func (c *capped) String() string {
	if c.dropped {
		return "[earlier output dropped]\n" + c.buf.String()
	}
	return c.buf.String()
}
