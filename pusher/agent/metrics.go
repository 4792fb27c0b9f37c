package agent

import (
	"net/http"

	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// agentMetrics is what GET /metrics serves: counters and histograms the
// agent updates as each run (sync or rollback) finishes, gauges read
// from its state at each scrape (stateCollector), and the process and Go
// runtime collectors.
type agentMetrics struct {
	reg                        *prometheus.Registry
	syncs, failures, rollbacks prometheus.Counter
	duration, fetched, written prometheus.Histogram
}

func newAgentMetrics(a *Agent) *agentMetrics {
	m := &agentMetrics{
		reg:       prometheus.NewRegistry(),
		syncs:     prometheus.NewCounter(prometheus.CounterOpts{Name: "ingot_agent_syncs_total", Help: "Syncs run (rollbacks included)."}),
		failures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "ingot_agent_sync_failures_total", Help: "Syncs that failed."}),
		rollbacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "ingot_agent_rollbacks_total", Help: "Rollbacks run."}),
		// 0.25 s to about 2.3 hours.
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ingot_agent_sync_duration_seconds",
			Help: "How long each sync took, failed ones included.", Buckets: prometheus.ExponentialBuckets(0.25, 2, 16)}),
		// 1 KiB to 16 GiB.
		fetched: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ingot_agent_sync_fetched_bytes",
			Help: "Bytes of objects and deltas each sync received from stores.", Buckets: prometheus.ExponentialBuckets(1<<10, 4, 13)}),
		written: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ingot_agent_sync_written_bytes",
			Help: "Bytes each sync wrote to the root.", Buckets: prometheus.ExponentialBuckets(1<<10, 4, 13)}),
	}
	m.reg.MustRegister(m.syncs, m.failures, m.rollbacks, m.duration, m.fetched, m.written,
		stateCollector{a},
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector())
	return m
}

// finished counts a run that ended with res.
func (m *agentMetrics) finished(res api.Result) {
	m.syncs.Inc()
	if !res.OK {
		m.failures.Inc()
	}
	m.duration.Observe(res.Seconds)
	m.fetched.Observe(float64(res.Fetched))
	m.written.Observe(float64(res.Written))
}

func (m *agentMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// stateCollector reads the agent's status and its store's counters at
// each scrape.
type stateCollector struct{ a *Agent }

var (
	descHealthy   = prometheus.NewDesc("ingot_agent_healthy", "1 when the last sync succeeded.", nil, nil)
	descSyncing   = prometheus.NewDesc("ingot_agent_syncing", "1 while a sync runs.", nil, nil)
	descImage     = prometheus.NewDesc("ingot_agent_image_info", "The image the root is at.", []string{"image"}, nil)
	descRecv      = prometheus.NewDesc("ingot_agent_fetched_bytes_total", "Bytes received from stores.", nil, nil)
	descRequests  = prometheus.NewDesc("ingot_agent_fetch_requests_total", "HTTP requests to stores.", nil, nil)
	descFetchFail = prometheus.NewDesc("ingot_agent_fetch_failures_total", "Failed store requests (retried or fallen through).", nil, nil)
	descLast      = prometheus.NewDesc("ingot_agent_last_sync_seconds", "Duration of the last sync.", nil, nil)
	descDrift     = prometheus.NewDesc("ingot_agent_drift_paths", "Paths changed by hand, found by the last sync.", nil, nil)
)

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHealthy, descSyncing, descImage, descRecv, descRequests, descFetchFail, descLast, descDrift} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.a.Status()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	var recv, reqs, fails int64
	if c.a.source != nil {
		recv, reqs, fails = c.a.source.Stats()
	}
	ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, b(s.Healthy))
	ch <- prometheus.MustNewConstMetric(descSyncing, prometheus.GaugeValue, b(s.Syncing))
	ch <- prometheus.MustNewConstMetric(descImage, prometheus.GaugeValue, 1, s.Image)
	ch <- prometheus.MustNewConstMetric(descRecv, prometheus.CounterValue, float64(recv))
	ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(reqs))
	ch <- prometheus.MustNewConstMetric(descFetchFail, prometheus.CounterValue, float64(fails))
	drift := 0
	if s.Last != nil {
		drift = len(s.Last.Drift)
		ch <- prometheus.MustNewConstMetric(descLast, prometheus.GaugeValue, s.Last.Seconds)
	}
	ch <- prometheus.MustNewConstMetric(descDrift, prometheus.GaugeValue, float64(drift))
}
