package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/pusher/api"
)

// utmpRecord builds one 384-byte glibc utmp record.
func utmpRecord(typ int16, pid int32, line, user, host string, sec int32) []byte {
	r := make([]byte, utmpSize)
	le := binary.LittleEndian
	le.PutUint16(r[0:], uint16(typ))
	le.PutUint32(r[4:], uint32(pid))
	copy(r[8:40], line)
	copy(r[44:76], user)
	copy(r[76:332], host)
	le.PutUint32(r[340:], uint32(sec))
	return r
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int32 {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return int32(cmd.Process.Pid)
}

func TestParseUtmp(t *testing.T) {
	b := slicesConcat(
		utmpRecord(2, 0, "~", "reboot", "6.12.0", 1700000000), // BOOT_TIME
		utmpRecord(6, 400, "tty1", "LOGIN", "", 1700000001),   // LOGIN_PROCESS
		utmpRecord(utmpUserProcess, 1234, "pts/0", "alice", "192.0.2.7", 1700000002),
		utmpRecord(8, 1235, "pts/1", "", "", 1700000003), // DEAD_PROCESS
		utmpRecord(utmpUserProcess, 99, "tty2", strings.Repeat("b", 32), "", 1700000004),
	)
	got, err := ParseUtmp(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []Login{
		{User: "alice", Line: "pts/0", Host: "192.0.2.7", PID: 1234, Time: time.Unix(1700000002, 0).UTC()},
		{User: strings.Repeat("b", 32), Line: "tty2", PID: 99, Time: time.Unix(1700000004, 0).UTC()},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("login %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := ParseUtmp(b[:len(b)-1]); err == nil {
		t.Error("a truncated record was accepted")
	}
	if l, err := ParseUtmp(nil); err != nil || len(l) != 0 {
		t.Errorf("empty utmp: %v %v", l, err)
	}
}

func slicesConcat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func FuzzParseUtmp(f *testing.F) {
	f.Add(utmpRecord(utmpUserProcess, 1, "pts/0", "root", "host", 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		logins, err := ParseUtmp(b)
		if err != nil {
			if len(b)%utmpSize == 0 {
				t.Fatalf("whole records refused: %v", err)
			}
			return
		}
		if len(logins) > len(b)/utmpSize {
			t.Fatalf("%d logins from %d records", len(logins), len(b)/utmpSize)
		}
		for _, l := range logins {
			if l.User == "" || len(l.User) > 32*3 || len(l.Line) > 32*3 {
				t.Fatalf("bad login %+v", l)
			}
		}
	})
}

// testAgent is an agent with only its maintenance config, for Indicators.
func testAgent(t *testing.T, m MaintenanceConfig) *Agent {
	t.Helper()
	if err := m.validate(); err != nil {
		t.Fatal(err)
	}
	return &Agent{Config: &Config{Maintenance: m}}
}

func TestIndicatorBlockFile(t *testing.T) {
	hold := filepath.Join(t.TempDir(), "hold")
	a := testAgent(t, MaintenanceConfig{BlockFile: hold})
	if got := a.Indicators(t.Context()); len(got) != 0 {
		t.Fatalf("no file: %+v", got)
	}
	os.WriteFile(hold, []byte("kernel debugging, ask bob\nsecond line\n"), 0o644)
	got := a.Indicators(t.Context())
	if len(got) != 1 || got[0].Kind != api.IndicatorBlocked || got[0].Source != api.SourceBlockFile ||
		got[0].Reason != hold+" present: kernel debugging, ask bob" {
		t.Fatalf("file present: %+v", got)
	}
	os.WriteFile(hold, nil, 0o644)
	if got := a.Indicators(t.Context()); len(got) != 1 || got[0].Reason != hold+" present" {
		t.Fatalf("empty file: %+v", got)
	}
}

func TestIndicatorLogins(t *testing.T) {
	utmp := filepath.Join(t.TempDir(), "utmp")
	a := testAgent(t, MaintenanceConfig{BlockOnLogins: true, Utmp: utmp})
	if got := a.Indicators(t.Context()); len(got) != 0 {
		t.Fatalf("no utmp file: %+v", got)
	}
	dead := deadPID(t)
	os.WriteFile(utmp, slicesConcat(
		utmpRecord(6, int32(os.Getpid()), "tty1", "LOGIN", "", 1),
		utmpRecord(utmpUserProcess, dead, "pts/3", "gone", "198.51.100.1", 1),
	), 0o644)
	if got := a.Indicators(t.Context()); len(got) != 0 {
		t.Fatalf("only a getty and a stale session (pid %d): %+v", dead, got)
	}
	os.WriteFile(utmp, slicesConcat(
		utmpRecord(utmpUserProcess, dead, "pts/3", "gone", "198.51.100.1", 1),
		utmpRecord(utmpUserProcess, int32(os.Getpid()), "pts/0", "alice", "192.0.2.7", 1),
	), 0o644)
	got := a.Indicators(t.Context())
	if len(got) != 1 || got[0].Kind != api.IndicatorBlocked || got[0].Source != api.SourceLogins ||
		got[0].Reason != "logged in: alice on pts/0 from 192.0.2.7" {
		t.Fatalf("alice logged in: %+v", got)
	}
	os.WriteFile(utmp, []byte("not utmp"), 0o644)
	if got := a.Indicators(t.Context()); len(got) != 1 || got[0].Kind != api.IndicatorBlocked {
		t.Fatalf("an unreadable utmp must block: %+v", got)
	}
}

func TestIndicatorCommand(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "busy")
	script := "if [ -e " + flag + " ]; then echo 'backup running'; exit 3; fi"
	a := testAgent(t, MaintenanceConfig{CheckCommand: []string{"sh", "-c", script}, CheckKind: api.IndicatorUnavailable, CheckInterval: time.Nanosecond})
	if got := a.Indicators(t.Context()); len(got) != 0 {
		t.Fatalf("command exits 0: %+v", got)
	}
	os.WriteFile(flag, nil, 0o644)
	got := a.Indicators(t.Context())
	if len(got) != 1 || got[0].Kind != api.IndicatorUnavailable || got[0].Source != api.SourceCommand ||
		!strings.Contains(got[0].Reason, "exit status 3: backup running") {
		t.Fatalf("command exits 3: %+v", got)
	}

	// The answer is kept for CheckInterval.
	a = testAgent(t, MaintenanceConfig{CheckCommand: []string{"sh", "-c", script}, CheckInterval: time.Hour})
	if got := a.Indicators(t.Context()); len(got) != 1 || got[0].Kind != api.IndicatorBlocked {
		t.Fatalf("default kind: %+v", got)
	}
	os.Remove(flag)
	if got := a.Indicators(t.Context()); len(got) != 1 {
		t.Fatalf("the answer was not kept: %+v", got)
	}

	// A command that hangs is killed with its children after the timeout.
	pidFile := filepath.Join(dir, "child")
	a = testAgent(t, MaintenanceConfig{CheckCommand: []string{"sh", "-c", "sleep 600 & echo $! > " + pidFile + "; wait"},
		CheckTimeout: 300 * time.Millisecond, CheckInterval: time.Nanosecond})
	got = a.Indicators(t.Context())
	if len(got) != 1 || got[0].Kind != api.IndicatorBlocked || !strings.Contains(got[0].Reason, "timed out after 300ms") {
		t.Fatalf("hanging command: %+v", got)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for {
		// Killed, it may stay a zombie until init reaps it: gone or Z.
		st, err := os.ReadFile("/proc/" + strconv.Itoa(child) + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if syscall.Kill(child, 0) != nil {
			break
		}
		time.Sleep(20 * time.Millisecond) // a survivor hangs the test until go test's -timeout
	}

	// A command that cannot start blocks.
	a = testAgent(t, MaintenanceConfig{CheckCommand: []string{filepath.Join(dir, "missing")}})
	if got := a.Indicators(context.Background()); len(got) != 1 || got[0].Kind != api.IndicatorBlocked {
		t.Fatalf("missing command: %+v", got)
	}
}

func TestIndicatorLastSync(t *testing.T) {
	a := testAgent(t, MaintenanceConfig{})
	if got := a.Indicators(t.Context()); len(got) != 0 {
		t.Fatalf("no sync yet: %+v", got)
	}
	a.last = &api.Result{OK: false, Error: "fetching chunk: 503\nmore"}
	got := a.Indicators(t.Context())
	if len(got) != 1 || got[0].Kind != api.IndicatorUnavailable || got[0].Source != api.SourceLastSync ||
		got[0].Reason != "last sync failed: fetching chunk: 503" {
		t.Fatalf("failed sync: %+v", got)
	}
	a.last = &api.Result{OK: true}
	if got := a.Indicators(t.Context()); len(got) != 0 {
		t.Fatalf("good sync: %+v", got)
	}
}

func TestMaintenanceConfig(t *testing.T) {
	good := "root: /srv/r\ntrusted_keys: [k.pub]\nmaintenance:\n  block_file: hold\n  block_on_logins: true\n  check_command: [/usr/bin/true]\n  check_kind: Unavailable\n  check_timeout: 5s\n"
	c, err := ParseConfig("/etc/ingot/agent.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Maintenance
	if m.BlockFile != "/etc/ingot/hold" || m.Utmp != "/var/run/utmp" || m.CheckKind != api.IndicatorUnavailable || m.CheckTimeout != 5*time.Second || m.CheckInterval != 10*time.Second {
		t.Errorf("parsed %+v", m)
	}
	for _, bad := range []string{"maintenance:\n  check_kind: Maybe\n", "maintenance:\n  check_command: ['']\n", "maintenance:\n  block_fil: x\n"} {
		if _, err := ParseConfig("a.yaml", []byte("root: /r\ntrusted_keys: [k]\n"+bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
