package rollout_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/rollout"
	"github.com/ingotfleet/ingot/rollout/config"
	"github.com/ingotfleet/ingot/rollout/promtest"
)

// indicatorRules is the alert rule the tests load into Prometheus: the
// annotation names the indicator's kind, the host label the host.
const indicatorRules = `groups:
  - name: ingot
    rules:
      - alert: IngotIndicator
        expr: ingot_test_indicator == 1
        annotations:
          ingot_indicator: '{{ $labels.kind }}'
`

func series(host string, kind rollout.Kind) string {
	return fmt.Sprintf("ingot_test_indicator{host=%q,kind=%q}", host, kind)
}

// TestAlertSourceReal reads indicators from a real Prometheus and
// Alertmanager: kinds from the annotation, a silenced alert ignored, and
// every host blocked while Prometheus is down.
func TestAlertSourceReal(t *testing.T) {
	stack := promtest.Start(t, indicatorRules)
	ex := stack.Exporter
	ex.Set(series("h1", rollout.Blocked), 1)
	ex.Set(series("h2", rollout.Unavailable), 1)
	ex.Set(series("h3", rollout.Blocked), 1)
	ex.Set(series("h4", rollout.MaintenanceRequired), 1)
	ex.Set(series("h5", rollout.Blocked), 0)
	stack.Silence("host", "h3")
	src := &rollout.AlertSource{Sources: config.IndicatorSources{
		Prometheus: stack.PrometheusURL(), Alertmanager: stack.AlertmanagerURL(),
		KindKey: "ingot_indicator", HostLabel: "host", Timeout: 5 * time.Second}}
	ctx := context.Background()
	want := map[string]rollout.Kind{"h1": rollout.Blocked, "h2": rollout.Unavailable, "h4": rollout.MaintenanceRequired}
	var ind rollout.Indicators
	for {
		ind = src.Read(ctx)
		if ind.Down != "" {
			t.Fatalf("sources down: %s", ind.Down)
		}
		// Wait until Prometheus fires all four and Alertmanager holds h3's
		// (until then h3 may show as Blocked from Prometheus).
		if len(ind.Hosts) == 3 && amHas(t, stack, "h3") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 0; i < 5; i++ { // stays so
		ind = src.Read(ctx)
		for h, k := range want {
			got := ind.Hosts[h]
			if len(got) == 0 {
				t.Fatalf("%s: no signals, want %s", h, k)
			}
			for _, s := range got { // one from each source
				if s.Kind != k {
					t.Fatalf("%s: signals %+v, want only %s", h, got, k)
				}
			}
		}
		if s := ind.Hosts["h3"]; len(s) != 0 {
			t.Fatalf("silenced h3 has signals %+v", s)
		}
		if s := ind.Hosts["h5"]; len(s) != 0 {
			t.Fatalf("h5 at 0 has signals %+v", s)
		}
		time.Sleep(200 * time.Millisecond)
	}
	stack.StopPrometheus()
	if ind := src.Read(ctx); ind.Down == "" {
		t.Fatalf("Prometheus stopped but the indicators are not down: %+v", ind)
	}
	amOnly := &rollout.AlertSource{Sources: config.IndicatorSources{Alertmanager: stack.AlertmanagerURL(), KindKey: "ingot_indicator", HostLabel: "host", Timeout: time.Second}}
	if ind := amOnly.Read(ctx); ind.Down != "" || len(ind.Hosts["h3"]) != 0 || len(ind.Hosts["h1"]) != 1 || ind.Hosts["h1"][0].Source != "alertmanager alert IngotIndicator" {
		t.Fatalf("Alertmanager alone: %+v", ind)
	}
}

// amHas says whether Alertmanager lists host's alert as suppressed.
func amHas(t *testing.T, stack *promtest.Stack, host string) bool {
	return stack.Suppressed(host)
}
