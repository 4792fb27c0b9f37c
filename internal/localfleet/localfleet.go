package localfleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/internal/pki"
	"github.com/ingotfleet/ingot/pusher/agent"
	"github.com/ingotfleet/ingot/triggers"
)

// Options describe agents to start on this machine.
type Options struct {
	N      int    // how many agents
	Dir    string // where their roots, configs and the CA go
	Prefix string // host names: PREFIX-01, … (default "host")
	// Binary is the ingot executable to run each agent as a process; ""
	// runs them inside this process.
	Binary      string
	Stores      []string
	TrustedKeys []string
	Triggers    []triggers.Rule
	// Extra changes each agent's config before it starts (i counts from 0).
	Extra func(i int, c *agent.Config)
	Log   *slog.Logger
	// Env is added to each agent process's environment.
	Env []string
}

// Agent is one agent of a Fleet.
type Agent struct {
	Name, Root, ConfigFile, Addr string
	Config                       *agent.Config
	cmd                          *exec.Cmd
	cancel                       context.CancelFunc
	done                         chan error
	log                          *os.File
}

// Fleet is agents on loopback with temporary roots, a fleet CA and a
// controller certificate: what the demo and the end-to-end tests use.
type Fleet struct {
	Dir    string
	CA     string // CA directory
	Agents []*Agent
	Hosts  []agentclient.Host
	Client *agentclient.Client
	opts   Options
}

// Start makes a CA, a certificate, a root and a config per agent, and
// starts them on 127.0.0.1 with ports chosen by the kernel.
func Start(ctx context.Context, opts Options) (*Fleet, error) {
	if opts.Prefix == "" {
		opts.Prefix = "host"
	}
	f := &Fleet{Dir: opts.Dir, CA: filepath.Join(opts.Dir, "ca"), opts: opts}
	if err := pki.InitCA(f.CA, "ingot local fleet"); err != nil {
		return nil, err
	}
	if _, _, err := pki.IssueCert(f.CA, f.CA, "controller", pki.RoleController, nil, 0); err != nil {
		return nil, err
	}
	conf, err := pki.ClientTLS(filepath.Join(f.CA, pki.CACertFile), filepath.Join(f.CA, "controller.pem"), filepath.Join(f.CA, "controller-key.pem"))
	if err != nil {
		return nil, err
	}
	f.Client = agentclient.NewClient(conf)
	f.Client.Poll = 100 * time.Millisecond
	for i := 0; i < opts.N; i++ {
		a, err := f.startAgent(ctx, i)
		if err != nil {
			f.Stop()
			return nil, err
		}
		f.Agents = append(f.Agents, a)
		f.Hosts = append(f.Hosts, agentclient.Host{Name: a.Name, Addr: a.Addr})
	}
	return f, nil
}

func (f *Fleet) startAgent(ctx context.Context, i int) (*Agent, error) {
	name := fmt.Sprintf("%s-%02d", f.opts.Prefix, i+1)
	dir := filepath.Join(f.Dir, name)
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	cert, key, err := pki.IssueCert(f.CA, dir, "agent", pki.RoleAgent, []string{"127.0.0.1", "localhost"}, 0)
	if err != nil {
		return nil, err
	}
	c := &agent.Config{Name: name, Listen: "127.0.0.1:0", AddrFile: filepath.Join(dir, "addr"), Root: root,
		Stores: f.opts.Stores, TrustedKeys: f.opts.TrustedKeys, Triggers: f.opts.Triggers}
	c.TLS.CA, c.TLS.Cert, c.TLS.Key = filepath.Join(f.CA, pki.CACertFile), cert, key
	c.Retries = 3
	c.Backoff = 50 * time.Millisecond
	if f.opts.Extra != nil {
		f.opts.Extra(i, c)
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, err
	}
	a := &Agent{Name: name, Root: root, ConfigFile: filepath.Join(dir, "agent.yaml"), Config: c}
	if err := os.WriteFile(a.ConfigFile, b, 0o644); err != nil {
		return nil, err
	}
	return a, f.run(ctx, a)
}

// run starts (or restarts) an agent and waits for its address.
func (f *Fleet) run(ctx context.Context, a *Agent) error {
	addrFile := a.Config.AddrFile
	// A stale address left in place would be taken for the new agent's.
	if err := os.Remove(addrFile); err != nil && !os.IsNotExist(err) {
		return err
	}
	a.done = make(chan error, 1)
	if f.opts.Binary != "" {
		lf, err := os.OpenFile(filepath.Join(filepath.Dir(a.ConfigFile), "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		a.log = lf
		a.cmd = exec.Command(f.opts.Binary, "agent", "--config", a.ConfigFile)
		a.cmd.Stdout, a.cmd.Stderr = lf, lf
		a.cmd.Env = append(os.Environ(), f.opts.Env...)
		if err := a.cmd.Start(); err != nil {
			return err
		}
		go func() { a.done <- a.cmd.Wait() }()
	} else {
		c, err := agent.LoadConfig(a.ConfigFile)
		if err != nil {
			return err
		}
		ag, err := agent.New(c, f.opts.Log)
		if err != nil {
			return err
		}
		actx, cancel := context.WithCancel(ctx)
		a.cancel = cancel
		go func() { a.done <- ag.Serve(actx, nil) }()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			a.Addr = strings.TrimSpace(string(b))
			return nil
		}
		select {
		case err := <-a.done:
			return fmt.Errorf("agent %s exited at start: %v (log: %s)", a.Name, err, filepath.Join(filepath.Dir(a.ConfigFile), "agent.log"))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent %s did not start listening", a.Name)
		}
	}
}

// Kill stops one agent hard (SIGKILL for a process).
func (f *Fleet) Kill(a *Agent) {
	if a.cmd != nil && a.cmd.Process != nil {
		_ = a.cmd.Process.Kill() // fails only if the agent exited already
	}
	if a.cancel != nil {
		a.cancel()
	}
	if a.done != nil {
		<-a.done
		a.done = nil // Stop must not wait for it again
	}
	if a.log != nil {
		_ = a.log.Close() // the agent's own log, for reading after a failure: nothing to do about it
		a.log = nil
	}
}

// Restart starts a stopped agent again (on a new port).
func (f *Fleet) Restart(ctx context.Context, i int) error {
	a := f.Agents[i]
	if err := f.run(ctx, a); err != nil {
		return err
	}
	f.Hosts[i].Addr = a.Addr
	return nil
}

// Stop stops every agent.
func (f *Fleet) Stop() {
	for _, a := range f.Agents {
		if a.cmd != nil && a.cmd.Process != nil {
			_ = a.cmd.Process.Signal(os.Interrupt) // fails only if the agent exited already
		}
		if a.cancel != nil {
			a.cancel()
		}
	}
	for _, a := range f.Agents {
		if a.done == nil {
			continue
		}
		select {
		case <-a.done:
		case <-time.After(10 * time.Second):
			if a.cmd != nil && a.cmd.Process != nil {
				_ = a.cmd.Process.Kill() // fails only if the agent exited already
				<-a.done
			}
		}
		if a.log != nil {
			_ = a.log.Close() // the agent's own log, for reading after a failure: nothing to do about it
		}
	}
}

// Push pushes an image to every agent of the fleet.
func (f *Fleet) Push(ctx context.Context, opts agentclient.PushOptions) ([]agentclient.HostReport, error) {
	reports := agentclient.Push(ctx, f.Client, f.Hosts, opts)
	var errs []error
	for _, r := range reports {
		if r.State != agentclient.HostOK {
			errs = append(errs, fmt.Errorf("%s: %s: %s", r.Host.Name, r.State, r.Error))
		}
	}
	return reports, errors.Join(errs...)
}
