package rollouttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ingotfleet/ingot/rollout"
	"github.com/ingotfleet/ingot/rollout/config"
)

// Agent is one fake agent's state.
type Agent struct {
	Image, Previous string
	Syncing         bool
	RunID, LastID   int64
	LastOK          bool
	LastErr         string
	Syncs           []string // images synced to, in order
	Rollbacks       int
	BadHealth       bool // health gates fail
	FailSync        bool // syncs fail
	Unreachable     bool
}

// Fleet is a fleet of fake agents, in process. A sync takes Delay.
type Fleet struct {
	Delay time.Duration
	mu    sync.Mutex
	a     map[string]*Agent
}

// NewFleet returns agents for hosts, all at image.
func NewFleet(hosts []config.Host, image string, delay time.Duration) *Fleet {
	f := &Fleet{Delay: delay, a: map[string]*Agent{}}
	for _, h := range hosts {
		f.a[h.Name] = &Agent{Image: image, LastOK: true}
	}
	return f
}

// Do runs fn on host's agent under the fleet's lock.
func (f *Fleet) Do(host string, fn func(a *Agent)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.a[host])
}

// Agent returns a copy of host's agent.
func (f *Fleet) Agent(host string) Agent {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := *f.a[host]
	a.Syncs = append([]string(nil), a.Syncs...)
	return a
}

var errUnreachable = errors.New("connection refused (fake)")

// Status implements rollout.Agents.
func (f *Fleet) Status(_ context.Context, h config.Host) (rollout.AgentStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.a[h.Name]
	if a == nil || a.Unreachable {
		return rollout.AgentStatus{}, errUnreachable
	}
	return rollout.AgentStatus{Image: a.Image, Syncing: a.Syncing, RunID: a.RunID, LastID: a.LastID, LastOK: a.LastOK, LastErr: a.LastErr}, nil
}

func (f *Fleet) run(h config.Host, fn func(a *Agent)) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.a[h.Name]
	if a == nil || a.Unreachable {
		return 0, errUnreachable
	}
	if a.Syncing {
		return 0, errors.New("agent busy")
	}
	a.Syncing = true
	a.RunID++
	id := a.RunID
	time.AfterFunc(f.Delay, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		fn(a)
		a.Syncing, a.LastID = false, id
	})
	return id, nil
}

// Sync implements rollout.Agents.
func (f *Fleet) Sync(_ context.Context, h config.Host, image string) (int64, error) {
	f.mu.Lock()
	if a := f.a[h.Name]; a != nil && !a.Unreachable && !a.Syncing {
		a.Syncs = append(a.Syncs, image)
	}
	f.mu.Unlock()
	return f.run(h, func(a *Agent) {
		if a.FailSync {
			a.LastOK, a.LastErr = false, "sync failed (fake)"
			return
		}
		a.Previous, a.Image, a.LastOK, a.LastErr = a.Image, image, true, ""
	})
}

// Rollback implements rollout.Agents.
func (f *Fleet) Rollback(_ context.Context, h config.Host) (int64, error) {
	return f.run(h, func(a *Agent) {
		a.Rollbacks++
		if a.Previous != "" {
			a.Image, a.Previous = a.Previous, a.Image
		}
		a.LastOK, a.LastErr = true, ""
	})
}

// Health is a rollout.Checker: it fails for agents with BadHealth.
func (f *Fleet) Health(_ context.Context, h config.Host) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.a[h.Name].BadHealth {
		return fmt.Errorf("%s: health check failed (fake)", h.Name)
	}
	return nil
}

// Log is an audit log being written: safe for the controller's writes
// and the test's reads at once.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Log) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

// Events parses the log so far.
func (l *Log) Events() ([]rollout.Event, error) {
	l.mu.Lock()
	b := bytes.Clone(l.buf.Bytes())
	l.mu.Unlock()
	return ParseEvents(b)
}

// ParseEvents parses an audit log (JSON lines).
func ParseEvents(b []byte) ([]rollout.Event, error) { return rollout.ParseAudit(b) }

// ServeHTTP serves the fleet to controllers in other processes:
// GET /HOST/status, POST /HOST/sync?image=I, POST /HOST/rollback.
func (f *Fleet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, op, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	h := config.Host{Name: host}
	var v any
	var err error
	switch op {
	case "status":
		v, err = f.Status(r.Context(), h)
	case "sync":
		v, err = f.Sync(r.Context(), h, r.URL.Query().Get("image"))
	case "rollback":
		v, err = f.Rollback(r.Context(), h)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	_ = json.NewEncoder(w).Encode(v) // the status is sent: a client gone mid-body is not told anything more
}

// HTTPAgents is a rollout.Agents over a Fleet served at URL.
type HTTPAgents struct{ URL string }

func (c HTTPAgents) call(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, path, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, out)
}

// Status implements rollout.Agents.
func (c HTTPAgents) Status(ctx context.Context, h config.Host) (rollout.AgentStatus, error) {
	var s rollout.AgentStatus
	return s, c.call(ctx, http.MethodGet, "/"+h.Name+"/status", &s)
}

// Sync implements rollout.Agents.
func (c HTTPAgents) Sync(ctx context.Context, h config.Host, image string) (int64, error) {
	var id int64
	return id, c.call(ctx, http.MethodPost, "/"+h.Name+"/sync?image="+url.QueryEscape(image), &id)
}

// Rollback implements rollout.Agents.
func (c HTTPAgents) Rollback(ctx context.Context, h config.Host) (int64, error) {
	var id int64
	return id, c.call(ctx, http.MethodPost, "/"+h.Name+"/rollback", &id)
}

// String returns the log so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
