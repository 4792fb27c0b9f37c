package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/rollout/config"
)

// PusherAgents drives real agents through the pusher's client (mutual
// TLS, the agent API).
type PusherAgents struct {
	Client *agentclient.Client
	Stores []string // store URLs the agents fetch from (empty: theirs)
}

// Status implements Agents.
func (p *PusherAgents) Status(ctx context.Context, h config.Host) (AgentStatus, error) {
	s, err := p.Client.Status(ctx, h.Addr)
	if err != nil {
		return AgentStatus{}, err
	}
	as := AgentStatus{Image: s.Image, Syncing: s.Syncing, RunID: s.RunID, LastID: s.LastID, LastOK: true, Slots: s.Slots}
	if s.Last != nil {
		as.LastOK, as.LastErr = s.Last.OK, s.Last.Error
	}
	for _, ind := range s.Indicators {
		if ind.Source == api.SourceLastSync {
			continue // LastOK says it
		}
		as.Indicators = append(as.Indicators, Signal{Kind: Kind(ind.Kind), Source: "agent " + ind.Source + ": " + ind.Reason})
	}
	return as, nil
}

// Sync implements Agents.
func (p *PusherAgents) Sync(ctx context.Context, h config.Host, image string) (int64, error) {
	return p.Client.Sync(ctx, h.Addr, api.SyncRequest{Image: image, Stores: p.Stores})
}

// SyncSlot implements SlotAgents.
func (p *PusherAgents) SyncSlot(ctx context.Context, h config.Host, image string) (int64, error) {
	return p.Client.Sync(ctx, h.Addr, api.SyncRequest{Image: image, Stores: p.Stores, Slot: api.SlotInactive, Switch: true})
}

// RollbackSlot implements SlotAgents.
func (p *PusherAgents) RollbackSlot(ctx context.Context, h config.Host) error {
	var out struct{}
	return p.Client.SlotAction(ctx, h.Addr, "rollback", &out)
}

// Rollback implements Agents.
func (p *PusherAgents) Rollback(ctx context.Context, h config.Host) (int64, error) {
	return p.Client.Rollback(ctx, h.Addr)
}

// Gates returns the Checker for the policy's health gates: HTTP URLs
// must answer 2xx, TCP addresses accept, PromQL expressions (asked of
// the policy's Prometheus) return nothing.
func Gates(pol *config.Policy, hc *http.Client) Checker {
	if len(pol.Health.Gates) == 0 {
		return nil
	}
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	return func(ctx context.Context, h config.Host) error {
		addr, _, _ := net.SplitHostPort(h.Addr)
		r := config.GateVars(h.Name, addr)
		var errs []error
		for _, g := range pol.Health.Gates {
			var err error
			switch {
			case g.HTTP != "":
				err = httpGate(ctx, hc, r.Replace(g.HTTP))
			case g.TCP != "":
				var c net.Conn
				c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", r.Replace(g.TCP))
				if err == nil {
					_ = c.Close() // the gate asks only that it connects
				}
			case g.PromQL != "":
				err = promqlGate(ctx, hc, pol.Indicators.Prometheus, r.Replace(g.PromQL))
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

func httpGate(ctx context.Context, hc *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}

func promqlGate(ctx context.Context, hc *http.Client, base, expr string) error {
	if base == "" {
		return errors.New("a PromQL gate needs indicators.prometheus in the policy")
	}
	u := strings.TrimSuffix(base, "/") + "/api/v1/query?query=" + url.QueryEscape(expr)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("PromQL %s: %w", expr, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("PromQL %s: %s", expr, r.Error)
	}
	var res []json.RawMessage
	if json.Unmarshal(r.Data.Result, &res) == nil && len(res) == 0 {
		return nil
	}
	return fmt.Errorf("PromQL %s returned %s", expr, r.Data.Result)
}
