package promtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/internal/testenv"
)

// Exporter serves the gauges a test sets, in the Prometheus text format.
type Exporter struct {
	mu     sync.Mutex
	values map[string]float64 // full series name with labels -> value
	srv    *httptest.Server
}

// Set sets a series, e.g. `ingot_test_indicator{host="a",kind="Blocked"}`.
func (e *Exporter) Set(series string, v float64) {
	e.mu.Lock()
	e.values[series] = v
	e.mu.Unlock()
}

func (e *Exporter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var lines []string
	for k, v := range e.values {
		lines = append(lines, fmt.Sprintf("%s %g", k, v))
	}
	sort.Strings(lines)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	// A scrape cut short is retried by Prometheus at the next interval.
	_, _ = fmt.Fprintln(w, "# TYPE ingot_test_indicator gauge")
	_, _ = fmt.Fprintln(w, strings.Join(lines, "\n"))
}

// Stack is a Prometheus scraping the Exporter and evaluating the rules,
// sending alerts to an Alertmanager.
type Stack struct {
	t        testing.TB
	dir      string
	Exporter *Exporter
	promAddr string
	amAddr   string
	prom     *exec.Cmd
	promLog  *bytes.Buffer
	promDone chan struct{}
	am       *exec.Cmd
}

// Start starts the exporter, Alertmanager and Prometheus with rules (the
// contents of a rules file); they stop when the test ends.
func Start(t testing.TB, rules string) *Stack {
	t.Helper()
	testenv.RequireTool(t, "prometheus", "prometheus")
	testenv.RequireTool(t, "prometheus-alertmanager", "prometheus-alertmanager")
	s := &Stack{t: t, dir: t.TempDir(), Exporter: &Exporter{values: map[string]float64{}}}
	s.Exporter.srv = httptest.NewServer(s.Exporter)
	t.Cleanup(s.Exporter.srv.Close)
	s.amAddr, s.promAddr = freeAddr(t), freeAddr(t)
	write := func(name, body string) string {
		p := filepath.Join(s.dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	amConf := write("alertmanager.yml", "route: {receiver: none, group_wait: 1s, group_interval: 1s}\nreceivers: [{name: none}]\n")
	s.am = exec.Command("prometheus-alertmanager", "--config.file="+amConf, "--storage.path="+filepath.Join(s.dir, "am"),
		"--web.listen-address="+s.amAddr, "--cluster.listen-address=", "--log.level=warn")
	amLog := &bytes.Buffer{}
	s.am.Stdout, s.am.Stderr = amLog, amLog
	if err := s.am.Start(); err != nil {
		t.Fatalf("starting alertmanager: %v", err)
	}
	amDone := make(chan struct{})
	// Killed by the cleanup: neither the kill nor the exit status says anything.
	go func() { _ = s.am.Wait(); close(amDone) }()
	t.Cleanup(func() { _ = s.am.Process.Kill(); <-amDone })
	write("rules.yml", rules)
	write("prometheus.yml", fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [rules.yml]
alerting: {alertmanagers: [{static_configs: [{targets: [%q]}]}]}
scrape_configs: [{job_name: exporter, static_configs: [{targets: [%q]}]}]
`, s.amAddr, strings.TrimPrefix(s.Exporter.srv.URL, "http://")))
	s.StartPrometheus()
	t.Cleanup(s.StopPrometheus)
	waitReady(t, "http://"+s.amAddr+"/-/ready", amDone, amLog)
	return s
}

// StartPrometheus starts Prometheus (again, on the same port and data).
func (s *Stack) StartPrometheus() {
	s.t.Helper()
	s.promLog = &bytes.Buffer{}
	s.prom = exec.Command("prometheus", "--config.file="+filepath.Join(s.dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(s.dir, "tsdb"), "--web.listen-address="+s.promAddr, "--log.level=warn")
	s.prom.Stdout, s.prom.Stderr = s.promLog, s.promLog
	if err := s.prom.Start(); err != nil {
		s.t.Fatalf("starting prometheus: %v", err)
	}
	s.promDone = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(s.prom, s.promDone) // a dead Prometheus shows in waitReady or the test
	waitReady(s.t, s.PrometheusURL()+"/-/ready", s.promDone, s.promLog)
}

// StopPrometheus kills Prometheus; stopping a stopped one does nothing.
func (s *Stack) StopPrometheus() {
	if s.prom == nil {
		return
	}
	_ = s.prom.Process.Kill() // fails only if it exited already
	<-s.promDone
	s.prom = nil
}

// PrometheusURL and AlertmanagerURL are the servers' base URLs.
func (s *Stack) PrometheusURL() string   { return "http://" + s.promAddr }
func (s *Stack) AlertmanagerURL() string { return "http://" + s.amAddr }

// Silence silences every alert whose label name has value, for an hour.
func (s *Stack) Silence(name, value string) {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{
		"matchers":  []map[string]any{{"name": name, "value": value, "isRegex": false, "isEqual": true}},
		"startsAt":  time.Now().UTC().Format(time.RFC3339),
		"endsAt":    time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"createdBy": "promtest", "comment": "test silence",
	})
	resp, err := http.Post(s.AlertmanagerURL()+"/api/v2/silences", "application/json", bytes.NewReader(body))
	if err != nil {
		s.t.Fatalf("creating a silence: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("creating a silence: %s", resp.Status)
	}
}

// waitReady polls url until it answers 200; it fails the test if the
// server exits first.
func waitReady(t testing.TB, url string, exited <-chan struct{}, log *bytes.Buffer) {
	t.Helper()
	for {
		select {
		case <-exited:
			t.Fatalf("%s: the server exited before it was ready:\n%s", url, log.String())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Suppressed says whether Alertmanager holds an alert of host (label
// "host") silenced or inhibited.
func (s *Stack) Suppressed(host string) bool {
	resp, err := http.Get(s.AlertmanagerURL() + "/api/v2/alerts")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var as []struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&as); err != nil {
		return false
	}
	for _, a := range as {
		if a.Labels["host"] == host && a.Status.State == "suppressed" {
			return true
		}
	}
	return false
}
