package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/builder/sandbox"
	"github.com/ingotfleet/ingot/builder/sandbox/sandboxtest"
	"github.com/ingotfleet/ingot/internal/testenv"
)

func run(t *testing.T, root string, opts sandbox.Options, cmd ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	opts.Stdout, opts.Stderr = &out, &errb
	err := sandbox.Run(context.Background(), root, cmd, opts)
	if errb.Len() > 0 {
		t.Logf("stderr of %q: %s", cmd, errb.String())
	}
	return out.String(), err
}

// snapshot lists every path under root with its type and mode, to check
// that Run leaves nothing behind.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v\n", strings.TrimPrefix(p, root), fi.Mode())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestRunEnvironment(t *testing.T) {
	testenv.RequireRoot(t)
	root := sandboxtest.MiniRoot(t, "sh", "cat", "ls", "tr")
	before := snapshot(t, root)
	script := `echo "sde=$SOURCE_DATE_EPOCH lc=$LC_ALL tz=$TZ path=$PATH home=$HOME extra=$EXTRA"
echo "umask=$(umask)"
echo "host=$(cat /proc/sys/kernel/hostname)"
echo "init=$(tr -d "\\0" </proc/1/cmdline)"
echo "dev=$(ls /dev | tr '\n' ' ')"
echo "policy=$(/usr/sbin/policy-rc.d; echo $?)"
echo "pwd=$(pwd)"
`
	out, err := run(t, root, sandbox.Options{SourceDateEpoch: 1700000000, Env: []string{"EXTRA=yes", "TZ=UTC"}},
		"sh", "-c", script)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, want := range []string{
		"sde=1700000000 lc=C.UTF-8 tz=UTC path=" + sandbox.Path + " home=/root extra=yes\n",
		"umask=0022\n",
		"host=ingot\n",
		"init=ingot-sandbox-init\n",
		"dev=console fd full null ptmx pts random shm stderr stdin stdout tty urandom zero \n",
		"policy=101\n",
		"pwd=/\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if after := snapshot(t, root); after != before {
		t.Errorf("Run left changes in the root:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestRunExitStatus(t *testing.T) {
	testenv.RequireRoot(t)
	root := sandboxtest.MiniRoot(t, "sh")
	tests := []struct {
		cmd      []string
		code     int
		setupErr bool
	}{
		{cmd: []string{"sh", "-c", "exit 0"}},
		{cmd: []string{"sh", "-c", "exit 3"}, code: 3},
		{cmd: []string{"sh", "-c", "kill -9 $$"}, code: 137},
		{cmd: []string{"no-such-program"}, setupErr: true},
		{cmd: []string{"/usr/bin/missing"}, setupErr: true},
	}
	for _, tt := range tests {
		for _, m := range modes {
			t.Run(m.name+"/"+strings.Join(tt.cmd, " "), func(t *testing.T) {
				_, err := run(t, root, m.opts, tt.cmd...)
				var ee *sandbox.ExitError
				switch {
				case tt.setupErr:
					if !errors.Is(err, sandbox.ErrSetup) {
						t.Fatalf("err = %v, want ErrSetup", err)
					}
				case tt.code == 0:
					if err != nil {
						t.Fatalf("err = %v", err)
					}
				case !errors.As(err, &ee):
					t.Fatalf("err = %v, want *ExitError", err)
				case ee.Code != tt.code:
					t.Fatalf("code = %d, want %d", ee.Code, tt.code)
				}
			})
		}
	}
}

// modes are the two kinds of sandbox, for tests that hold for both.
var modes = []struct {
	name string
	opts sandbox.Options
}{
	{"privileged", sandbox.Options{}},
	{"untrusted", sandbox.Options{Untrusted: true}},
}

// TestNoNetwork: a script that connects to a listening port on the host
// succeeds outside the sandbox and fails inside it.
func TestNoNetwork(t *testing.T) {
	testenv.RequireRoot(t)
	bash := testenv.RequireTool(t, "bash", "bash")
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	script := fmt.Sprintf(`exec 3<>/dev/tcp/127.0.0.1/%d && head -c 5 <&3`, port)
	// Control: the same script on the host reaches the listener.
	if out, err := exec.Command(bash, "-c", script).CombinedOutput(); err != nil || string(out) != "hello" {
		t.Fatalf("control run on the host: %v %q", err, out)
	}
	root := sandboxtest.MiniRoot(t, "bash", "head", "cat")
	for _, m := range modes {
		for _, addr := range []string{fmt.Sprintf("127.0.0.1/%d", port), "1.1.1.1/80", "8.8.8.8/53"} {
			_, err := run(t, root, m.opts, "bash", "-c", "exec 3<>/dev/tcp/"+addr)
			var ee *sandbox.ExitError
			if !errors.As(err, &ee) {
				t.Errorf("%s: connect to %s inside the sandbox: err = %v, want a failing exit", m.name, addr, err)
			}
		}
		out, err := run(t, root, m.opts, "cat", "/proc/net/dev")
		if err != nil {
			t.Fatal(err)
		}
		var ifaces []string
		for _, l := range strings.Split(out, "\n")[2:] {
			if name, _, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
				ifaces = append(ifaces, name)
			}
		}
		if strings.Join(ifaces, ",") != "lo" {
			t.Errorf("%s: interfaces in the sandbox = %v, want only lo", m.name, ifaces)
		}
	}
}

func TestRunKillsLeftovers(t *testing.T) {
	testenv.RequireRoot(t)
	root := sandboxtest.MiniRoot(t, "sh", "sleep")
	// A daemon left running: Run returns when the command exits, and the
	// pid namespace takes the daemon with it.
	done := make(chan error, 1)
	go func() {
		_, err := run(t, root, sandbox.Options{}, "sh", "-c", "sleep 1000 </dev/null >/dev/null 2>&1 & echo started")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Run waited for a background process")
	}
	// Cancelling the context kills the command.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	err := sandbox.Run(ctx, root, []string{"sleep", "1000"}, sandbox.Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestBind(t *testing.T) {
	testenv.RequireRoot(t)
	root := sandboxtest.MiniRoot(t, "sh", "cat")
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "pkg.deb"), []byte("payload"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, root)
	out, err := run(t, root, sandbox.Options{Binds: []sandbox.Bind{{Source: host, Target: "/mnt/in"}}},
		"sh", "-c", "cat /mnt/in/pkg.deb; echo x > /mnt/in/new && echo WROTE")
	if err != nil {
		var ee *sandbox.ExitError
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
	}
	if !strings.HasPrefix(out, "payload") || strings.Contains(out, "WROTE") {
		t.Errorf("out = %q, want the payload and a failed write", out)
	}
	if after := snapshot(t, root); after != before {
		t.Errorf("Run left changes in the root:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestRefusesSymlinkedMountPoints(t *testing.T) {
	testenv.RequireRoot(t)
	root := sandboxtest.MiniRoot(t, "sh")
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "dev")); err != nil {
		t.Fatal(err)
	}
	_, err := run(t, root, sandbox.Options{}, "sh", "-c", "true")
	if !errors.Is(err, sandbox.ErrSetup) || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("err = %v, want a refusal naming the symlink", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("something was written through the symlink: %v", ents)
	}
}

// TestLoopback: with Options.Loopback, 127.0.0.1 inside the sandbox is
// an up interface of its own (a closed port refuses the connection);
// without it the network is unreachable. Either way the outside is.
func TestLoopback(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "bash", "bash")
	root := sandboxtest.MiniRoot(t, "bash")
	for _, m := range modes {
		for _, lo := range []bool{false, true} {
			opts := m.opts
			opts.Loopback = lo
			var errb bytes.Buffer
			o := opts
			o.Stderr = &errb
			if err := sandbox.Run(context.Background(), root, []string{"bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9"}, o); err == nil {
				t.Fatalf("%s loopback=%v: connect to a closed port succeeded", m.name, lo)
			}
			want := "Network is unreachable"
			if lo {
				want = "Connection refused"
			}
			if !strings.Contains(errb.String(), want) {
				t.Errorf("%s loopback=%v: connect to 127.0.0.1:9: %q, want %q", m.name, lo, errb.String(), want)
			}
			if err := sandbox.Run(context.Background(), root, []string{"bash", "-c", "exec 3<>/dev/tcp/1.1.1.1/80"}, opts); err == nil {
				t.Errorf("%s loopback=%v: reached 1.1.1.1", m.name, lo)
			}
		}
	}
}
