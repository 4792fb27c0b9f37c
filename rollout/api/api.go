package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ingotfleet/ingot/rollout"
	"github.com/ingotfleet/ingot/rollout/fleetlock"
)

// New serves the controller: its status, operators' commands, the
// plan (what it would do now), Prometheus metrics, and the FleetLock
// endpoints over its slots. Mount it behind mutual TLS.
func New(c *rollout.Controller, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+rollout.PathStatus, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, c.Snapshot())
	})
	mux.HandleFunc("GET "+rollout.PathPlan, func(w http.ResponseWriter, _ *http.Request) {
		out, err := c.PlanNow()
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST "+rollout.PathCommand, func(w http.ResponseWriter, r *http.Request) {
		var req rollout.CommandRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad request: " + err.Error()})
			return
		}
		err := c.Command(r.Context(), req.Command, req.Host)
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, c.Snapshot())
		case errors.Is(err, rollout.ErrNotLeader):
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		case errors.Is(err, rollout.ErrUnknownHost):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		default:
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		}
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{c: c})
	mux.Handle("GET "+rollout.PathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	fl := fleetlock.New(c, log)
	for _, p := range []string{fleetlock.PathPreReboot, fleetlock.PathSteadyState, fleetlock.PathHolders} {
		mux.Handle(p, fl)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	// The status is sent: a client gone mid-body is not told anything more.
	_ = json.NewEncoder(w).Encode(v)
}

var (
	descHosts = prometheus.NewDesc("ingot_rollout_hosts", "Hosts per set and phase.", []string{"set", "phase"}, nil)
	descUsed  = prometheus.NewDesc("ingot_rollout_budget_used", "Hosts of the set counting against its budget (at work, cooling, Unavailable, FleetLock).", []string{"set"}, nil)
	descMax   = prometheus.NewDesc("ingot_rollout_budget_max", "The set's budget (max_unavailable resolved).", []string{"set"}, nil)
	descBlock = prometheus.NewDesc("ingot_rollout_blocked_seconds", "How long the host has waited blocked.", []string{"host"}, nil)
	descDec   = prometheus.NewDesc("ingot_rollout_decisions_total", "Decisions and events by action.", []string{"action"}, nil)
	descStage = prometheus.NewDesc("ingot_rollout_stage", "The stage hosts start from now.", nil, nil)
	descFail  = prometheus.NewDesc("ingot_rollout_failures", "Hosts failed in this rollout.", nil, nil)
	descLead  = prometheus.NewDesc("ingot_rollout_leading", "1 while this controller leads.", nil, nil)
)

// collector makes the metrics from a snapshot at each scrape.
type collector struct{ c *rollout.Controller }

func (m *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHosts, descUsed, descMax, descBlock, descDec, descStage, descFail, descLead} {
		ch <- d
	}
}

func (m *collector) Collect(ch chan<- prometheus.Metric) {
	s := m.c.Snapshot()
	perSet := map[[2]string]int{}
	for _, h := range m.c.Plan.Inv.Hosts {
		ph := s.Hosts[h.Name].Phase
		if ph == "" {
			ph = rollout.Pending
		}
		for _, set := range h.Sets {
			perSet[[2]string{set, string(ph)}]++
		}
	}
	for k, n := range perSet {
		ch <- prometheus.MustNewConstMetric(descHosts, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
	for _, u := range s.Sets {
		ch <- prometheus.MustNewConstMetric(descUsed, prometheus.GaugeValue, float64(u.Used), u.Set)
		ch <- prometheus.MustNewConstMetric(descMax, prometheus.GaugeValue, float64(u.Max), u.Set)
	}
	now := time.Now()
	for h, since := range s.BlockedSince {
		ch <- prometheus.MustNewConstMetric(descBlock, prometheus.GaugeValue, now.Sub(since).Seconds(), h)
	}
	for a, n := range m.c.Counts() {
		ch <- prometheus.MustNewConstMetric(descDec, prometheus.CounterValue, float64(n), string(a))
	}
	lead := 0.0
	if s.Leading {
		lead = 1
	}
	ch <- prometheus.MustNewConstMetric(descStage, prometheus.GaugeValue, float64(s.Stage))
	ch <- prometheus.MustNewConstMetric(descFail, prometheus.GaugeValue, float64(s.Failures))
	ch <- prometheus.MustNewConstMetric(descLead, prometheus.GaugeValue, lead)
}
