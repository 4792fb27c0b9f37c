package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/triggers"
)

// MaintenanceConfig is the config's `maintenance:` section: what on the
// host itself says whether a rollout may touch it now. The agent reports
// the answers in its status as indicators, which a rollout controller
// treats as it treats alerts (docs/rollout.md).
type MaintenanceConfig struct {
	// BlockFile: while this file exists the host is Blocked, with the
	// file's first line as the reason (`echo "kernel debugging" > /etc/ingot/hold`).
	BlockFile string `yaml:"block_file"`
	// BlockOnLogins: while someone is logged in (a user process in utmp)
	// the host is Blocked.
	BlockOnLogins bool `yaml:"block_on_logins"`
	// Utmp is the utmp file read for logins (default /var/run/utmp).
	Utmp string `yaml:"utmp"`
	// CheckCommand is run (argv, no shell); a non-zero exit makes the host
	// CheckKind (Blocked, the default, or Unavailable), its output's first
	// line the reason. It is killed with its process group after
	// CheckTimeout (default 10s), and its answer is kept for CheckInterval
	// (default 10s): status is polled often.
	CheckCommand  []string      `yaml:"check_command"`
	CheckKind     string        `yaml:"check_kind"`
	CheckTimeout  time.Duration `yaml:"check_timeout"`
	CheckInterval time.Duration `yaml:"check_interval"`
}

func (m *MaintenanceConfig) validate() error {
	switch m.CheckKind {
	case "":
		m.CheckKind = api.IndicatorBlocked
	case api.IndicatorBlocked, api.IndicatorUnavailable:
	default:
		return fmt.Errorf("maintenance.check_kind %q: want Blocked or Unavailable", m.CheckKind)
	}
	if m.Utmp == "" {
		m.Utmp = "/var/run/utmp"
	}
	if m.CheckTimeout <= 0 {
		m.CheckTimeout = 10 * time.Second
	}
	if m.CheckInterval <= 0 {
		m.CheckInterval = 10 * time.Second
	}
	if len(m.CheckCommand) > 0 && m.CheckCommand[0] == "" {
		return errors.New("maintenance.check_command: the program name is empty")
	}
	return nil
}

// indicatorState keeps the check command's last answer.
type indicatorState struct {
	mu   sync.Mutex
	at   time.Time
	last *api.Indicator
}

// Indicators reads every configured source now (the check command's
// answer may be up to CheckInterval old). A source that cannot be read
// blocks the host: fail safe.
func (a *Agent) Indicators(ctx context.Context) []api.Indicator {
	m := &a.Config.Maintenance
	var out []api.Indicator
	if m.BlockFile != "" {
		if ind := blockFile(m.BlockFile); ind != nil {
			out = append(out, *ind)
		}
	}
	if m.BlockOnLogins {
		if ind := loginsIndicator(m.Utmp); ind != nil {
			out = append(out, *ind)
		}
	}
	if len(m.CheckCommand) > 0 {
		s := &a.indicators
		s.mu.Lock()
		if s.at.IsZero() || time.Since(s.at) >= m.CheckInterval {
			s.last = checkCommand(ctx, m.CheckCommand, m.CheckKind, m.CheckTimeout)
			s.at = time.Now()
		}
		if s.last != nil {
			out = append(out, *s.last)
		}
		s.mu.Unlock()
	}
	a.mu.Lock()
	last := a.last
	running := a.running
	a.mu.Unlock()
	if last != nil && !last.OK && !running {
		out = append(out, api.Indicator{Kind: api.IndicatorUnavailable, Source: api.SourceLastSync, Reason: "last sync failed: " + firstLine(last.Error)})
	}
	return out
}

func blockFile(name string) *api.Indicator {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	ind := &api.Indicator{Kind: api.IndicatorBlocked, Source: api.SourceBlockFile}
	if err != nil {
		ind.Reason = err.Error()
		return ind
	}
	defer f.Close()
	line, _ := bufio.NewReader(io.LimitReader(f, 4096)).ReadString('\n')
	ind.Reason = name + " present"
	if l := strings.TrimSpace(line); l != "" {
		ind.Reason += ": " + l
	}
	return ind
}

func loginsIndicator(utmp string) *api.Indicator {
	b, err := os.ReadFile(utmp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing writes utmp here: nobody is logged in that way
	}
	ind := &api.Indicator{Kind: api.IndicatorBlocked, Source: api.SourceLogins}
	if err != nil {
		ind.Reason = "reading utmp: " + err.Error()
		return ind
	}
	logins, err := ParseUtmp(b)
	if err != nil {
		ind.Reason = utmp + ": " + err.Error()
		return ind
	}
	var who []string
	for _, l := range logins {
		// A session whose process is gone left its record behind
		// (a crash); it does not block.
		if l.PID > 0 && syscall.Kill(int(l.PID), 0) == syscall.ESRCH {
			continue
		}
		w := l.User + " on " + l.Line
		if l.Host != "" {
			w += " from " + l.Host
		}
		who = append(who, w)
	}
	if len(who) == 0 {
		return nil
	}
	ind.Reason = "logged in: " + strings.Join(who, ", ")
	return ind
}

// Login is one user session in utmp.
type Login struct {
	User, Line, Host string
	PID              int32
	Time             time.Time
}

// utmp records as glibc writes them on 64-bit Linux (x86_64, arm64):
// 384 bytes, 32-bit times.
const (
	utmpSize        = 384
	utmpUserProcess = 7
)

// ParseUtmp returns the user sessions (USER_PROCESS records) of a utmp
// file's contents.
func ParseUtmp(b []byte) ([]Login, error) {
	if len(b)%utmpSize != 0 {
		return nil, fmt.Errorf("utmp: %d bytes is not a whole number of %d-byte records", len(b), utmpSize)
	}
	var out []Login
	le := binary.LittleEndian
	for off := 0; off < len(b); off += utmpSize {
		r := b[off : off+utmpSize]
		if int16(le.Uint16(r[0:])) != utmpUserProcess {
			continue
		}
		l := Login{
			PID:  int32(le.Uint32(r[4:])),
			Line: cstring(r[8:40]),
			User: cstring(r[44:76]),
			Host: cstring(r[76:332]),
			Time: time.Unix(int64(int32(le.Uint32(r[340:]))), int64(int32(le.Uint32(r[344:])))*1000).UTC(),
		}
		if l.User == "" {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.ToValidUTF8(string(b), "?")
}

// checkCommand runs argv; nil means it exited 0.
func checkCommand(ctx context.Context, argv []string, kind string, timeout time.Duration) *api.Indicator {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := triggers.GroupCommand(cctx, argv)
	var out bytes.Buffer
	cmd.Stdout = &limitedBuffer{b: &out, max: 4096}
	cmd.Stderr = cmd.Stdout
	err := cmd.Run()
	if err == nil {
		return nil
	}
	reason := strings.Join(argv, " ") + ": "
	switch {
	case cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		reason += fmt.Sprintf("timed out after %s", timeout)
	default:
		reason += err.Error()
	}
	if l := firstLine(out.String()); l != "" {
		reason += ": " + l
	}
	return &api.Indicator{Kind: kind, Source: api.SourceCommand, Reason: reason}
}

type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
