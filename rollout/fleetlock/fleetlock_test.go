package fleetlock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/rollout"
)

// fakeSlots is a per-set budget in memory, as the controller keeps one.
type fakeSlots struct {
	mu      sync.Mutex
	setOf   map[string]string // host -> set
	budget  map[string]int    // set -> slots
	held    map[string]rollout.Holder
	failAll error // when set, every call fails with it
	now     time.Time
}

func newFakeSlots() *fakeSlots {
	return &fakeSlots{
		setOf: map[string]string{
			"web-1": "web", "web-2": "web", "web-3": "web",
			"db-1": "db", "db-2": "db",
		},
		budget: map[string]int{"web": 2, "db": 1},
		held:   map[string]rollout.Holder{},
		now:    time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC),
	}
}

func (f *fakeSlots) Acquire(ctx context.Context, host string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAll != nil {
		return f.failAll
	}
	set, ok := f.setOf[host]
	if !ok {
		return fmt.Errorf("unknown host %q: not in the inventory", host)
	}
	if _, ok := f.held[host]; ok {
		return nil
	}
	n := 0
	for _, h := range f.held {
		if h.Set == set {
			n++
		}
	}
	if n >= f.budget[set] {
		return fmt.Errorf("set %s: %d of %d slots in use: %w", set, n, f.budget[set], rollout.ErrNoSlot)
	}
	f.held[host] = rollout.Holder{Host: host, Set: set, Reason: "fleetlock", Since: f.now}
	return nil
}

func (f *fakeSlots) Release(ctx context.Context, host string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAll != nil {
		return f.failAll
	}
	if _, ok := f.setOf[host]; !ok {
		return fmt.Errorf("unknown host %q: not in the inventory", host)
	}
	delete(f.held, host)
	return nil
}

func (f *fakeSlots) Holders(ctx context.Context) ([]rollout.Holder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAll != nil {
		return nil, f.failAll
	}
	var out []rollout.Holder
	for _, h := range f.held {
		out = append(out, h)
	}
	return out, nil
}

func body(id, group string) string {
	return fmt.Sprintf(`{"client_params":{"id":%q,"group":%q}}`, id, group)
}

type result struct {
	status int
	err    Error
	raw    string
}

func post(t *testing.T, srv *httptest.Server, path, b string, header bool) result {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if header {
		req.Header.Set(ProtocolHeader, "true")
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) result {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, raw: string(raw)}
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(raw, &r.err); err != nil || r.err.Kind == "" || r.err.Value == "" {
			t.Fatalf("error reply %d is not a FleetLock error object {kind, value}: %q", resp.StatusCode, raw)
		}
	}
	return r
}

func holders(t *testing.T, srv *httptest.Server, query string) []rollout.Holder {
	t.Helper()
	resp, err := http.Get(srv.URL + PathHolders + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", PathHolders, resp.Status)
	}
	var hs []rollout.Holder
	if err := json.NewDecoder(resp.Body).Decode(&hs); err != nil {
		t.Fatal(err)
	}
	return hs
}

func hostsOf(hs []rollout.Holder) string {
	var names []string
	for _, h := range hs {
		names = append(names, h.Set+"/"+h.Host)
	}
	return strings.Join(names, ",")
}

// TestLockWithinBudget walks hosts of two sets through pre-reboot and
// steady-state: slots are taken up to each set's budget and no further,
// taking one twice is fine, releasing frees it for another host, and the
// holders are listed as they change.
func TestLockWithinBudget(t *testing.T) {
	slots := newFakeSlots()
	srv := httptest.NewServer(New(slots, nil))
	defer srv.Close()

	steps := []struct {
		path, id   string
		wantStatus int
		wantKind   string
		holders    string
	}{
		{PathPreReboot, "web-1", 200, "", "web/web-1"},
		{PathPreReboot, "web-1", 200, "", "web/web-1"}, // recursive: held already
		{PathPreReboot, "web-2", 200, "", "web/web-1,web/web-2"},
		{PathPreReboot, "web-3", 409, "failed_lock_semaphore_full", "web/web-1,web/web-2"},
		{PathPreReboot, "db-1", 200, "", "db/db-1,web/web-1,web/web-2"},
		{PathPreReboot, "db-2", 409, "failed_lock_semaphore_full", "db/db-1,web/web-1,web/web-2"},
		{PathSteadyState, "web-1", 200, "", "db/db-1,web/web-2"},
		{PathSteadyState, "web-1", 200, "", "db/db-1,web/web-2"}, // releasing none
		{PathPreReboot, "web-3", 200, "", "db/db-1,web/web-2,web/web-3"},
		{PathSteadyState, "db-1", 200, "", "web/web-2,web/web-3"},
		{PathPreReboot, "db-2", 200, "", "db/db-2,web/web-2,web/web-3"},
	}
	for i, s := range steps {
		r := post(t, srv, s.path, body(s.id, "default"), true)
		if r.status != s.wantStatus || r.err.Kind != s.wantKind {
			t.Fatalf("step %d: %s %s: %d %q (%s), want %d %q", i, s.path, s.id, r.status, r.err.Kind, r.raw, s.wantStatus, s.wantKind)
		}
		if s.wantStatus == 200 {
			var reply Reply
			json.Unmarshal([]byte(r.raw), &reply)
			if reply.ID != s.id || reply.Held != (s.path == PathPreReboot) {
				t.Fatalf("step %d: reply %s", i, r.raw)
			}
		}
		if got := hostsOf(holders(t, srv, "")); got != s.holders {
			t.Fatalf("step %d: holders %s, want %s", i, got, s.holders)
		}
	}
	if got := hostsOf(holders(t, srv, "?set=web")); got != "web/web-2,web/web-3" {
		t.Fatalf("holders of set web: %s", got)
	}
	if hs := holders(t, srv, "?set=none"); hs == nil || len(hs) != 0 {
		t.Fatalf("holders of an empty set: %#v, want []", hs)
	}
}

// TestBadRequests: requests a FleetLock server must refuse, with a status,
// a fixed kind and a message that says what is wrong; none takes a slot.
func TestBadRequests(t *testing.T) {
	slots := newFakeSlots()
	srv := httptest.NewServer(New(slots, nil))
	defer srv.Close()
	cases := []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		kind, msg                string
	}{
		{"missing header", "POST", PathPreReboot, body("web-1", "default"), nil, 400, "missing_protocol_header", "fleet-lock-protocol: true"},
		{"header false", "POST", PathPreReboot, body("web-1", "default"), map[string]string{ProtocolHeader: "false"}, 400, "missing_protocol_header", `"false"`},
		{"not JSON", "POST", PathPreReboot, `client_params=web-1`, nil, 400, "bad_request", "not a FleetLock JSON object"},
		{"truncated JSON", "POST", PathPreReboot, `{"client_params":{"id":"web-1"`, nil, 400, "bad_request", "not a FleetLock JSON object"},
		{"empty body", "POST", PathPreReboot, ``, nil, 400, "bad_request", "empty request body"},
		{"no client_params", "POST", PathPreReboot, `{"id":"web-1"}`, nil, 400, "bad_request", "lacks client_params"},
		{"empty id", "POST", PathPreReboot, body("", "default"), nil, 400, "bad_request", "client_params.id is missing"},
		{"no group", "POST", PathPreReboot, `{"client_params":{"id":"web-1"}}`, nil, 400, "bad_request", "client_params.group is missing"},
		{"bad group", "POST", PathPreReboot, body("web-1", "web workers"), nil, 400, "bad_request", "only letters, digits"},
		{"id with newline", "POST", PathPreReboot, body("web-1\nx", "default"), nil, 400, "bad_request", "unprintable"},
		{"two objects", "POST", PathPreReboot, body("web-1", "default") + `{}`, nil, 400, "bad_request", "data after the JSON object"},
		{"id wrong type", "POST", PathPreReboot, `{"client_params":{"id":7,"group":"default"}}`, nil, 400, "bad_request", "not a FleetLock JSON object"},
		{"huge body", "POST", PathPreReboot, `{"client_params":{"id":"web-1","group":"default","pad":"` + strings.Repeat("x", MaxBody) + `"}}`, nil, 413, "bad_request", "over"},
		{"unknown host", "POST", PathPreReboot, body("mystery", "default"), nil, 500, "failed_lock", `unknown host "mystery"`},
		{"unknown host unlock", "POST", PathSteadyState, body("mystery", "default"), nil, 500, "failed_unlock", `unknown host "mystery"`},
		{"GET lock", "GET", PathPreReboot, "", nil, 405, "method_not_allowed", "takes POST"},
		{"POST holders", "POST", PathHolders, "", nil, 405, "method_not_allowed", "takes GET"},
		{"unknown path", "POST", "/v1/reboot-now", body("web-1", "default"), nil, 404, "not_found", "/v1/pre-reboot"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
			if c.header != nil {
				for k, v := range c.header {
					req.Header.Set(k, v)
				}
			} else if c.name != "missing header" {
				req.Header.Set(ProtocolHeader, "true")
			}
			r := do(t, req)
			if r.status != c.status || r.err.Kind != c.kind || !strings.Contains(r.err.Value, c.msg) {
				t.Fatalf("%d %s %q, want %d %s with %q", r.status, r.err.Kind, r.err.Value, c.status, c.kind, c.msg)
			}
			if hs := holders(t, srv, ""); len(hs) != 0 {
				t.Fatalf("a refused request left holders %s", hostsOf(hs))
			}
		})
	}
}

// TestSlotsFailures: a controller that is not the leader, or gone, answers
// 503 so that clients retry, and nothing is held.
func TestSlotsFailures(t *testing.T) {
	slots := newFakeSlots()
	srv := httptest.NewServer(New(slots, nil))
	defer srv.Close()
	slots.failAll = fmt.Errorf("controller b: %w", rollout.ErrNotLeader)
	if r := post(t, srv, PathPreReboot, body("web-1", "default"), true); r.status != 503 || r.err.Kind != "not_leader" {
		t.Fatalf("lock with a deposed controller: %d %s", r.status, r.raw)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+PathHolders, nil)
	if r := do(t, req); r.status != 503 || r.err.Kind != "not_leader" {
		t.Fatalf("holders with a deposed controller: %d %s", r.status, r.raw)
	}
	slots.failAll = errors.New("bbolt: database closed")
	if r := do(t, req); r.status != 500 || r.err.Kind != "failed_list" || !strings.Contains(r.err.Value, "database closed") {
		t.Fatalf("holders with a broken store: %d %s", r.status, r.raw)
	}
	slots.failAll = context.DeadlineExceeded
	if r := post(t, srv, PathSteadyState, body("web-1", "default"), true); r.status != 503 || r.err.Kind != "unavailable" {
		t.Fatalf("unlock timing out: %d %s", r.status, r.raw)
	}
}

// TestCurl drives the server with curl, as an operator or a shell-script
// client would: lock, full budget, holders, unlock, and a request without
// the protocol header.
func TestCurl(t *testing.T) {
	curl := testenv.RequireTool(t, "curl", "curl")
	slots := newFakeSlots()
	srv := httptest.NewServer(New(slots, nil))
	defer srv.Close()

	run := func(args ...string) (int, string) {
		t.Helper()
		args = append([]string{"-sS", "-o", "-", "-w", "\n%{http_code}"}, args...)
		out, err := exec.Command(curl, args...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v", args, err)
		}
		s := strings.TrimSpace(string(out))
		i := strings.LastIndexByte(s, '\n')
		var code int
		fmt.Sscan(s[i+1:], &code)
		return code, s[:max(i, 0)]
	}
	lock := func(id string) (int, string) {
		return run("-H", "fleet-lock-protocol: true", "-d", body(id, "workers"), srv.URL+PathPreReboot)
	}
	if code, out := lock("db-1"); code != 200 || !strings.Contains(out, `"held": true`) {
		t.Fatalf("curl lock db-1: %d %s", code, out)
	}
	code, out := lock("db-2")
	var e Error
	if code != 409 || json.Unmarshal([]byte(out), &e) != nil || e.Kind != "failed_lock_semaphore_full" || !strings.Contains(e.Value, "set db") {
		t.Fatalf("curl lock db-2 with the budget of db full: %d %s", code, out)
	}
	code, out = run(srv.URL + PathHolders)
	var hs []rollout.Holder
	if code != 200 || json.Unmarshal([]byte(out), &hs) != nil || hostsOf(hs) != "db/db-1" || hs[0].Reason != "fleetlock" || hs[0].Since.IsZero() {
		t.Fatalf("curl holders: %d %s", code, out)
	}
	if code, out := run("-d", body("db-1", "workers"), srv.URL+PathSteadyState); code != 400 || !strings.Contains(out, "missing_protocol_header") {
		t.Fatalf("curl unlock without the header: %d %s", code, out)
	}
	if code, out := run("-H", "fleet-lock-protocol: true", "-d", body("db-1", "workers"), srv.URL+PathSteadyState); code != 200 {
		t.Fatalf("curl unlock db-1: %d %s", code, out)
	}
	if code, out := lock("db-2"); code != 200 {
		t.Fatalf("curl lock db-2 after db-1 released: %d %s", code, out)
	}
	if code, out := run(srv.URL + PathHolders + "?set=db"); code != 200 || !strings.Contains(out, `"host": "db-2"`) || strings.Contains(out, "db-1") {
		t.Fatalf("curl holders of db: %d %s", code, out)
	}
}

func TestDecodeRequestAccepts(t *testing.T) {
	h := http.Header{}
	h.Set(ProtocolHeader, "True ")
	for _, c := range []struct{ body, id, group string }{
		{body("c988d2509fdf5cdcbed39037c56406fb", "default"), "c988d2509fdf5cdcbed39037c56406fb", "default"},
		{`{"client_params":{"group":"tier.1-a","id":"web-1.example.org"},"extra":{"x":1}}`, "web-1.example.org", "tier.1-a"},
		{"\n  " + body("hôte-é", "g") + "\n", "hôte-é", "g"},
	} {
		p, err := DecodeRequest(h, strings.NewReader(c.body))
		if err != nil || p.ID != c.id || p.Group != c.group {
			t.Fatalf("DecodeRequest(%s) = %+v, %v", c.body, p, err)
		}
	}
}

// FuzzDecodeRequest: any body either is refused with a RequestError or
// yields params that are valid and survive a round trip.
func FuzzDecodeRequest(f *testing.F) {
	f.Add(body("web-1", "default"), "true")
	f.Add(`{"client_params":{"id":"a","group":"b"}}{}`, "true")
	f.Add(`{"client_params":null}`, "true")
	f.Add(`{"client_params":{"id":"\u0000","group":"x"}}`, "TRUE")
	f.Add(`[1,2,3]`, "true")
	f.Add(body("web-1", "default"), "")
	f.Fuzz(func(t *testing.T, b, hv string) {
		h := http.Header{}
		if hv != "" {
			h.Set(ProtocolHeader, hv)
		}
		p, err := DecodeRequest(h, strings.NewReader(b))
		if err != nil {
			re, ok := err.(*RequestError)
			if !ok || re.Status < 400 || re.Kind == "" || re.Msg == "" {
				t.Fatalf("error %#v is not a complete RequestError", err)
			}
			return
		}
		if p.ID == "" || p.Group == "" || validID(p.ID) != "" || validGroup(p.Group) != "" {
			t.Fatalf("accepted invalid params %+v", p)
		}
		var again bytes.Buffer
		json.NewEncoder(&again).Encode(requestBody{ClientParams: &p})
		h.Set(ProtocolHeader, "true")
		p2, err := DecodeRequest(h, &again)
		if err != nil || p2 != p {
			t.Fatalf("round trip of %+v: %+v, %v", p, p2, err)
		}
	})
}
