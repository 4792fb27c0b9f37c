package agent

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/pusher"
	"github.com/ingotfleet/ingot/pusher/api"
)

// The agent's /metrics: the state gauges under their names, the sync
// histograms filled by finished runs, and the process and Go collectors.
func TestAgentMetricsExposition(t *testing.T) {
	a := &Agent{Config: &Config{Name: "m"}, Syncer: &pusher.Syncer{Root: t.TempDir(), StateDir: t.TempDir()}}
	a.metrics = newAgentMetrics(a)
	a.metrics.finished(api.Result{OK: true, Seconds: 3, Fetched: 5000, Written: 70 << 10})
	res := api.Result{OK: false, Error: "boom", Seconds: 0.1, Drift: []string{"etc/motd"}}
	a.metrics.finished(res)
	a.last = &res
	srv := httptest.NewServer(a.metrics.handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	for _, want := range []string{
		"ingot_agent_syncs_total 2",
		"ingot_agent_sync_failures_total 1",
		"ingot_agent_rollbacks_total 0",
		"ingot_agent_healthy 0",
		"ingot_agent_syncing 0",
		`ingot_agent_image_info{image=""} 1`,
		"ingot_agent_fetched_bytes_total 0",
		"ingot_agent_last_sync_seconds 0.1",
		"ingot_agent_drift_paths 1",
		"# TYPE ingot_agent_sync_duration_seconds histogram",
		`ingot_agent_sync_duration_seconds_bucket{le="0.25"} 1`,
		`ingot_agent_sync_duration_seconds_bucket{le="2"} 1`,
		`ingot_agent_sync_duration_seconds_bucket{le="4"} 2`,
		"ingot_agent_sync_duration_seconds_sum 3.1",
		"ingot_agent_sync_duration_seconds_count 2",
		`ingot_agent_sync_fetched_bytes_bucket{le="1024"} 1`,
		`ingot_agent_sync_fetched_bytes_bucket{le="16384"} 2`,
		`ingot_agent_sync_written_bytes_bucket{le="65536"} 1`,
		`ingot_agent_sync_written_bytes_bucket{le="262144"} 2`,
		"process_resident_memory_bytes ",
		"process_open_fds ",
		"go_goroutines ",
		"go_gc_duration_seconds",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in the exposition:\n%s", want, body)
		}
	}
}
