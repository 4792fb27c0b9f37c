package builder

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
	"strings"
	"sync"
	"syscall"

	"github.com/ingotfleet/ingot/images"
)

// CheckResult is the outcome of two builds of the same input under
// different conditions.
type CheckResult struct {
	A, B   images.Digest
	Deltas []images.Delta // empty when the builds are identical
}

// OK reports whether both builds gave the same image.
func (c *CheckResult) OK() bool { return c.A == c.B && len(c.Deltas) == 0 }

// Variation describes how the second build of Check differs from the first.
const Variation = "build directory (another, deeper path), unpack order (reversed), " +
	"umask 077 and TZ=Pacific/Chatham outside the sandbox, one CPU (GOMAXPROCS=1, one unpack worker)"

// checkChildEnv marks the process Check starts for its second build; its
// value is the JSON of a checkJob. As with the sandbox's init, the marker
// only makes this binary run a build it could run anyway.
const checkChildEnv = "_INGOT_BUILD_CHECK_CHILD"

// checkJob is what the second build of Check is given.
type checkJob struct {
	Input    *Input
	WorkDir  string
	Progress bool // send progress events as JSON lines on descriptor 3
}

// The second build of Check runs in a child process (this binary again),
// so that its umask, TZ and GOMAXPROCS are the child's alone: the
// caller's process is never changed.
func init() {
	blob, ok := os.LookupEnv(checkChildEnv)
	if !ok {
		return
	}
	if err := checkChild(blob, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// checkChild builds the job under the varied conditions and writes the
// image's manifest to out; maintainer script output goes to scripts.
func checkChild(blob string, out, scripts io.Writer) error {
	var job checkJob
	if err := json.Unmarshal([]byte(blob), &job); err != nil {
		return fmt.Errorf("check build: reading the job: %w", err)
	}
	syscall.Umask(0o077) // this process only; TZ and GOMAXPROCS come from its environment
	ctx := context.Background()
	opts := Options{WorkDir: job.WorkDir, ReverseUnpack: true, Workers: 1, ScriptOutput: scripts}
	if job.Progress {
		syscall.CloseOnExec(3) // for this process only, not the programs the build runs
		enc := json.NewEncoder(os.NewFile(3, "progress"))
		opts.Progress = func(e Event) { _ = enc.Encode(e) } // progress is best effort
	}
	r, err := BuildRoot(ctx, job.Input, opts)
	if err != nil {
		return err
	}
	m, werr := images.WalkDir(ctx, r.Dir, images.WalkOptions{}, nil)
	if err := r.Cleanup(); err != nil && werr == nil {
		werr = err
	}
	if werr != nil {
		return werr
	}
	return m.Write(out, images.FormatIngot)
}

// Check builds in twice, the second time under varied conditions (see
// Variation) in a child process, and compares the two images path by
// path. The calling process's umask, TZ and GOMAXPROCS are not touched.
func Check(ctx context.Context, in *Input, opts Options) (*CheckResult, error) {
	base := opts.WorkDir
	if base == "" {
		base = os.TempDir()
	}
	dirA, dirB := filepath.Join(base, "check-a"), filepath.Join(base, "check-b")
	defer func() { // scratch build directories
		_ = os.RemoveAll(dirA)
		_ = os.RemoveAll(dirB)
	}()
	a := opts
	a.WorkDir = dirA
	ma, err := func() (*images.Manifest, error) {
		r, err := BuildRoot(ctx, in, a)
		if err != nil {
			return nil, err
		}
		m, werr := images.WalkDir(ctx, r.Dir, images.WalkOptions{}, nil)
		if err := r.Cleanup(); err != nil && werr == nil {
			werr = err
		}
		return m, werr
	}()
	if err != nil {
		return nil, fmt.Errorf("first build: %w", err)
	}
	mb, err := checkSecond(ctx, in, filepath.Join(dirB, "a", "deeper", "build", "directory"), opts)
	if err != nil {
		return nil, fmt.Errorf("second build: %w", err)
	}
	return &CheckResult{A: ma.Digest(), B: mb.Digest(), Deltas: images.Compare(ma, mb, images.CompareOptions{})}, nil
}

// checkSecond runs the second build in a child process of this binary
// with TZ=Pacific/Chatham and GOMAXPROCS=1 in its environment (the child
// sets its own umask) and reads back the image's manifest. The child's
// progress events and script output go to opts' Progress and
// ScriptOutput.
func checkSecond(ctx context.Context, in *Input, workDir string, opts Options) (*images.Manifest, error) {
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, err
	}
	blob, err := json.Marshal(checkJob{Input: in, WorkDir: workDir, Progress: opts.Progress != nil})
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "TZ" && k != "GOMAXPROCS" && k != checkChildEnv {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "TZ=Pacific/Chatham", "GOMAXPROCS=1", checkChildEnv+"="+string(blob))
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if opts.ScriptOutput != nil {
		cmd.Stderr = io.MultiWriter(&stderr, opts.ScriptOutput)
	}
	var events sync.WaitGroup
	if opts.Progress != nil {
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		cmd.ExtraFiles = []*os.File{pw}
		events.Add(1)
		go func() {
			defer events.Done()
			defer func() { _ = pr.Close() }()
			dec := json.NewDecoder(pr)
			for {
				var e Event
				if dec.Decode(&e) != nil {
					return
				}
				opts.Progress(e)
			}
		}()
	}
	err = cmd.Start()
	if len(cmd.ExtraFiles) > 0 {
		// The child holds its own copy: it is the only writer now, and
		// the reader ends when it exits (or never started).
		_ = cmd.ExtraFiles[0].Close()
	}
	if err == nil {
		err = cmd.Wait()
	}
	events.Wait()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("%s", strings.TrimSpace(tail(stderr.String(), 40)))
		}
		return nil, err
	}
	return images.ParseManifest(&stdout)
}
