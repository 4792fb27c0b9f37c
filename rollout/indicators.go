package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/ingotfleet/ingot/rollout/config"
)

// AlertSource reads indicators from Prometheus (/api/v1/alerts) and
// Alertmanager (/api/v2/alerts). An alert names the indicator's kind in
// its label or annotation KindKey and the host in its label HostLabel.
// Alertmanager's silenced and inhibited alerts are ignored, and so are
// Prometheus alerts that Alertmanager holds silenced or inhibited. A
// source that cannot be read makes every host Blocked (Indicators.Down).
type AlertSource struct {
	Sources config.IndicatorSources
	HTTP    *http.Client
}

type alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"` // Prometheus: firing, pending
	Status      struct {          // Alertmanager
		State       string   `json:"state"` // active, suppressed, unprocessed
		SilencedBy  []string `json:"silencedBy"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

func (a alert) suppressed() bool {
	return a.Status.State == "suppressed" || len(a.Status.SilencedBy) > 0 || len(a.Status.InhibitedBy) > 0
}

// Read returns the indicators now. It never fails: trouble is Down.
func (s *AlertSource) Read(ctx context.Context) Indicators {
	ind := Indicators{Hosts: map[string][]Signal{}}
	src := s.Sources
	if src.Prometheus == "" && src.Alertmanager == "" {
		return ind
	}
	ctx, cancel := context.WithTimeout(ctx, src.Timeout)
	defer cancel()
	suppressed := map[string]bool{}
	var down []string
	if src.Alertmanager != "" {
		var as []alert
		if err := s.get(ctx, src.Alertmanager, "/api/v2/alerts", &as); err != nil {
			down = append(down, "alertmanager: "+err.Error())
		}
		for _, a := range as {
			if a.suppressed() {
				suppressed[s.identity(a)] = true
				continue
			}
			s.add(ind, a, "alertmanager")
		}
	}
	if src.Prometheus != "" {
		var r struct {
			Status string `json:"status"`
			Data   struct {
				Alerts []alert `json:"alerts"`
			} `json:"data"`
		}
		err := s.get(ctx, src.Prometheus, "/api/v1/alerts", &r)
		if err == nil && r.Status != "success" {
			err = fmt.Errorf("status %q", r.Status)
		}
		if err != nil {
			down = append(down, "prometheus: "+err.Error())
		}
		for _, a := range r.Data.Alerts {
			if a.State == "firing" && !suppressed[s.identity(a)] {
				s.add(ind, a, "prometheus")
			}
		}
	}
	if len(down) > 0 {
		ind.Down = strings.Join(down, "; ")
	}
	return ind
}

func (s *AlertSource) identity(a alert) string {
	return a.Labels["alertname"] + "\x00" + a.Labels[s.Sources.HostLabel]
}

func (s *AlertSource) add(ind Indicators, a alert, from string) {
	host := a.Labels[s.Sources.HostLabel]
	kind := a.Labels[s.Sources.KindKey]
	if kind == "" {
		kind = a.Annotations[s.Sources.KindKey]
	}
	switch Kind(kind) {
	case MaintenanceRequired, Blocked, Unavailable:
	default:
		return // not an indicator
	}
	if host == "" {
		return
	}
	sig := Signal{Kind: Kind(kind), Source: from + " alert " + a.Labels["alertname"]}
	for _, have := range ind.Hosts[host] {
		if have == sig {
			return
		}
	}
	ind.Hosts[host] = append(ind.Hosts[host], sig)
}

func (s *AlertSource) get(ctx context.Context, base, path string, out any) error {
	u, err := url.JoinPath(base, path)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	c := s.HTTP
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}
