package agentclient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/pusher/api"
)

// Host is an agent to drive.
type Host struct {
	Name string `json:"name"`
	Addr string `json:"addr"` // host:port of the agent's API
}

// ParseHosts reads a hosts file: one host a line, "ADDR" or "NAME ADDR";
// blank lines and "#" comments skipped.
func ParseHosts(name string, r io.Reader) ([]Host, error) {
	var hosts []Host
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		var h Host
		switch len(f) {
		case 0:
			continue
		case 1:
			h = Host{Name: f[0], Addr: f[0]}
		case 2:
			h = Host{Name: f[0], Addr: f[1]}
		default:
			return nil, fmt.Errorf("%s:%d: want ADDR or NAME ADDR", name, n)
		}
		if !strings.Contains(h.Addr, ":") {
			return nil, fmt.Errorf("%s:%d: address %q has no port", name, n, h.Addr)
		}
		if seen[h.Name] {
			return nil, fmt.Errorf("%s:%d: host %s listed twice", name, n, h.Name)
		}
		seen[h.Name] = true
		hosts = append(hosts, h)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return hosts, nil
}

// Client calls agents' APIs over mutual TLS.
type Client struct {
	HTTP *http.Client
	// Poll is how often Wait asks for status (default 200ms).
	Poll time.Duration
}

// NewClient returns a client with the controller's TLS config.
func NewClient(conf *tls.Config) *Client {
	tr := &http.Transport{TLSClientConfig: conf, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second}
	return &Client{HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (c *Client) call(ctx context.Context, method, addr, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		_ = json.Unmarshal(b, &e) // a body that is not JSON leaves e.Error empty: the status stands in
		if e.Error == "" {
			e.Error = resp.Status
		}
		return fmt.Errorf("%s %s: %s", method, path, e.Error)
	}
	return json.Unmarshal(b, out)
}

// Status asks an agent for its status.
func (c *Client) Status(ctx context.Context, addr string) (api.Status, error) {
	var s api.Status
	return s, c.call(ctx, http.MethodGet, addr, "/v1/status", nil, &s)
}

// Sync asks an agent to start a sync; it returns the run id.
func (c *Client) Sync(ctx context.Context, addr string, req api.SyncRequest) (int64, error) {
	var r struct{ ID int64 }
	return r.ID, c.call(ctx, http.MethodPost, addr, "/v1/sync", req, &r)
}

// Rollback asks an agent to roll back.
func (c *Client) Rollback(ctx context.Context, addr string) (int64, error) {
	var r struct{ ID int64 }
	return r.ID, c.call(ctx, http.MethodPost, addr, "/v1/rollback", struct{}{}, &r)
}

// Wait polls an agent until run id is done and returns its result.
// progress, when set, sees every status polled.
func (c *Client) Wait(ctx context.Context, addr string, id int64, progress func(api.Status)) (*api.Result, error) {
	poll := c.Poll
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	fails := 0
	for {
		s, err := c.Status(ctx, addr)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			fails++
			if fails >= 10 {
				return nil, err
			}
		} else {
			fails = 0
			if progress != nil {
				progress(s)
			}
			if s.LastID >= id && !(s.Syncing && s.RunID == id) && s.Last != nil {
				return s.Last, nil
			}
		}
		t := time.NewTimer(poll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

// HostState is where one host of a push is.
type HostState string

// The states of a host in a push.
const (
	HostPending HostState = "pending"
	HostRunning HostState = "running"
	HostOK      HostState = "ok"
	HostFailed  HostState = "failed"
	HostSkipped HostState = "skipped" // not started: the push stopped after too many failures
)

// HostReport is one host's part of a push.
type HostReport struct {
	Host     Host                 `json:"host"`
	State    HostState            `json:"state"`
	Error    string               `json:"error,omitempty"`
	Result   *api.Result          `json:"result,omitempty"`
	Progress api.ProgressSnapshot `json:"-"`
	Seconds  float64              `json:"seconds"`
}

// PushOptions shape a push.
type PushOptions struct {
	Image images.Digest
	// Ref is the name:tag Image was resolved from, if any: agents check
	// the image is signed under it and not older than what they run.
	Ref string
	// AllowRollback lets agents go to an image older than theirs.
	AllowRollback bool
	Rollback      bool // roll back instead of syncing to Image
	Concurrency   int  // hosts at once (default 10)
	// Canary hosts go first, alone; if any fails, no other host starts.
	Canary int
	// MaxFailures: once more hosts than this have failed, no new host
	// starts (default: a tenth of the hosts, at least 1, so the push
	// stops at the second failure on a small fleet... see docs).
	MaxFailures int
	Stores      []string
	BWLimit     string
	DryRun      bool
	// Slot "inactive" syncs each host's inactive slot, then switches to
	// it (with Rollback: switches back to the other slot); the host is
	// done when its trial boot settles, within SlotDeadline
	// (SyncSlotAndWait, RollbackSlotAndWait).
	Slot         string
	SlotDeadline time.Duration
	// Update is called whenever a host's report changes (from many
	// goroutines; serialised by Push).
	Update func(HostReport)
}

// Push drives every host to the image and returns one report per host,
// in the order given.
func Push(ctx context.Context, c *Client, hosts []Host, opts PushOptions) []HostReport {
	p := &push{c: c, hosts: hosts, opts: opts, reports: make([]HostReport, len(hosts))}
	for i, h := range hosts {
		p.reports[i] = HostReport{Host: h, State: HostPending}
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = 10
	}
	maxFail := opts.MaxFailures
	if maxFail <= 0 {
		maxFail = max(1, len(hosts)/10)
	}
	next := 0
	// Canaries first, alone.
	if opts.Canary > 0 {
		n := min(opts.Canary, len(hosts))
		var wg sync.WaitGroup
		for ; next < n; next++ {
			wg.Add(1)
			go func(i int) { defer wg.Done(); p.runHost(ctx, i) }(next)
		}
		wg.Wait()
		if p.failed() > 0 {
			p.skip(next, "a canary failed")
			return p.reports
		}
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for ; next < len(hosts); next++ {
		sem <- struct{}{}
		if p.failed() > maxFail || ctx.Err() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			p.runHost(ctx, i)
		}(next)
	}
	wg.Wait()
	p.skip(next, "too many hosts failed")
	return p.reports
}

// push is one Push under way: its reports change under mu.
type push struct {
	c     *Client
	hosts []Host
	opts  PushOptions

	mu       sync.Mutex
	reports  []HostReport
	failures int
}

// update changes host i's report with f and passes it on to opts.Update.
func (p *push) update(i int, f func(r *HostReport)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(&p.reports[i])
	if p.opts.Update != nil {
		p.opts.Update(p.reports[i])
	}
}

// failed is the number of hosts failed so far.
func (p *push) failed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failures
}

// skip marks the hosts from index from on as skipped, for why.
func (p *push) skip(from int, why string) {
	for i := from; i < len(p.hosts); i++ {
		p.update(i, func(r *HostReport) { r.State, r.Error = HostSkipped, why })
	}
}

// runHost drives host i to the image (or rolls it back) and waits for
// its result.
func (p *push) runHost(ctx context.Context, i int) {
	c, h, opts := p.c, p.hosts[i], p.opts
	start := time.Now()
	p.update(i, func(r *HostReport) { r.State = HostRunning })
	var id int64
	var err error
	var res *api.Result
	req := api.SyncRequest{Image: opts.Image.String(), Stores: opts.Stores, BWLimit: opts.BWLimit, DryRun: opts.DryRun,
		Ref: opts.Ref, AllowRollback: opts.AllowRollback, Slot: opts.Slot, Switch: opts.Slot != ""}
	progress := func(s api.Status) { p.update(i, func(r *HostReport) { r.Progress = s.Progress }) }
	sw := SlotWaitOptions{Deadline: opts.SlotDeadline, Poll: c.Poll, Progress: progress}
	switch {
	case opts.Rollback && opts.Slot != "":
		res, err = RollbackSlotAndWait(ctx, c, h.Addr, sw)
	case opts.Rollback:
		id, err = c.Rollback(ctx, h.Addr)
	case opts.Slot != "":
		res, err = SyncSlotAndWait(ctx, c, h.Addr, req, sw)
	default:
		id, err = c.Sync(ctx, h.Addr, req)
	}
	if err == nil && res == nil {
		res, err = c.Wait(ctx, h.Addr, id, progress)
	}
	p.update(i, func(r *HostReport) {
		r.Seconds = time.Since(start).Seconds()
		r.Result = res
		switch {
		case err != nil:
			r.State, r.Error = HostFailed, err.Error()
		case !res.OK:
			r.State, r.Error = HostFailed, res.Error
		default:
			r.State = HostOK
		}
		if r.State == HostFailed {
			p.failures++
		}
	})
}

// ErrHostsFailed is returned by callers when a push had failures.
var ErrHostsFailed = errors.New("agentclient: hosts failed")
