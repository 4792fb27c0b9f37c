package etcdstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ingotfleet/ingot/rollout"
	"github.com/ingotfleet/ingot/rollout/etcdstore/etcdtest"
	"github.com/ingotfleet/ingot/rollout/storetest"
)

// testTTL is etcd's smallest lease with its default settings.
const testTTL = 2 * time.Second

var prefixes atomic.Int64

func newPrefix() string { return fmt.Sprintf("/ingot-test/rollout-%d", prefixes.Add(1)) }

func open(t testing.TB, endpoint, prefix, name string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Endpoints: []string{endpoint}, Prefix: prefix, Name: name, TTL: testTTL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func lead(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Campaign(context.Background()); err != nil {
		t.Fatalf("Campaign: %v", err)
	}
}

func commit(t testing.TB, s *Store, key, value string) {
	t.Helper()
	if err := s.Commit(context.Background(), map[string][]byte{key: []byte(value)}); err != nil {
		t.Fatalf("Commit %s=%s: %v", key, value, err)
	}
}

func wantNotLeader(t testing.TB, s *Store, key, value string) {
	t.Helper()
	err := s.Commit(context.Background(), map[string][]byte{key: []byte(value)})
	if !errors.Is(err, rollout.ErrNotLeader) {
		t.Fatalf("Commit %s=%s by a controller that does not lead: %v, want ErrNotLeader", key, value, err)
	}
}

func wantValue(t testing.TB, s *Store, key, want string) {
	t.Helper()
	got, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s = %q, want %q", key, got, want)
	}
}

// waitCandidates waits until n controllers are candidates under prefix.
func waitCandidates(t testing.TB, s *Store, n int) {
	t.Helper()
	for {
		resp, err := s.cli.Get(context.Background(), s.electPfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count == int64(n) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestStoreConformance runs the shared Store suite on real etcd; reopening
// kills etcd with SIGKILL and starts it again on the same data directory.
func TestStoreConformance(t *testing.T) {
	srv := etcdtest.Start(t)
	storetest.Run(t, storetest.Opener{New: func(t *testing.T) func(ctx context.Context) (rollout.Store, error) {
		prefix := newPrefix()
		opened := false
		return func(ctx context.Context) (rollout.Store, error) {
			if opened {
				srv.Restart()
			}
			opened = true
			s, err := Open(ctx, Config{Endpoints: []string{srv.Endpoint()}, Prefix: prefix, TTL: testTTL})
			if err != nil {
				return nil, err
			}
			if err := s.Campaign(ctx); err != nil {
				s.Close()
				return nil, err
			}
			return s, nil
		}
	}})
}

// TestOnlyLeaderCommits: of two controllers on one prefix, one leads and
// writes; the other waits in Campaign and cannot write until the first
// resigns, after which the first cannot write.
func TestOnlyLeaderCommits(t *testing.T) {
	srv := etcdtest.Start(t)
	prefix := newPrefix()
	a := open(t, srv.Endpoint(), prefix, "controller-a")
	b := open(t, srv.Endpoint(), prefix, "controller-b")

	wantNotLeader(t, a, "state", "before-campaign")
	lead(t, a)
	commit(t, a, "state", "a-1")
	if who, _ := b.Leader(context.Background()); who != "controller-a" {
		t.Fatalf("Leader() = %q, want controller-a", who)
	}

	bLeads := make(chan error, 1)
	go func() { bLeads <- b.Campaign(context.Background()) }()
	waitCandidates(t, a, 2)
	wantNotLeader(t, b, "state", "b-while-a-leads")
	commit(t, a, "state", "a-2")
	wantValue(t, b, "state", "a-2")
	select {
	case err := <-bLeads:
		t.Fatalf("the second controller's Campaign returned (%v) while the first leads", err)
	default:
	}
	if closed(a.Lost()) {
		t.Fatal("the leader's Lost() is closed while it leads")
	}

	lostA := a.Lost()
	if err := a.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !closed(lostA) {
		t.Fatal("Lost() not closed after Resign")
	}
	if err := <-bLeads; err != nil {
		t.Fatalf("the second controller's Campaign after the first resigned: %v", err)
	}
	commit(t, b, "state", "b-1")
	wantNotLeader(t, a, "state", "a-after-resign")
	wantValue(t, a, "state", "b-1")
	if who, _ := a.Leader(context.Background()); who != "controller-b" {
		t.Fatalf("Leader() = %q, want controller-b", who)
	}
}

// TestCampaignCancelled: a Campaign given up by its caller withdraws the
// candidate, so it never leads later.
func TestCampaignCancelled(t *testing.T) {
	srv := etcdtest.Start(t)
	prefix := newPrefix()
	a := open(t, srv.Endpoint(), prefix, "a")
	b := open(t, srv.Endpoint(), prefix, "b")
	lead(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Campaign(ctx) }()
	waitCandidates(t, a, 2)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Campaign returned %v, want context.Canceled", err)
	}
	waitCandidates(t, a, 1) // b's key is revoked, not left to expire
	wantNotLeader(t, b, "state", "b")
	commit(t, a, "state", "a")
}

// The leader of TestFailoverWhenLeaderKilled runs in this process, started
// from the test binary, so that the test can SIGKILL it with its lease.
const helperEnv = "INGOT_ETCDSTORE_HELPER"

func TestHelperLeader(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		return // only a helper when started by TestFailoverWhenLeaderKilled
	}
	endpoint, prefix, _ := strings.Cut(spec, " ")
	s, err := Open(context.Background(), Config{Endpoints: []string{endpoint}, Prefix: prefix, Name: "child", TTL: testTTL})
	if err != nil {
		t.Fatal(err)
	}
	lead(t, s)
	commit(t, s, "owner", "child")
	fmt.Println("leading")
	select {} // until killed
}

// TestFailoverWhenLeaderKilled: a leader killed with SIGKILL (no resign,
// no revoke) is replaced by the waiting controller once its lease expires.
func TestFailoverWhenLeaderKilled(t *testing.T) {
	srv := etcdtest.Start(t)
	prefix := newPrefix()
	child := exec.Command(os.Args[0], "-test.run=^TestHelperLeader$", "-test.count=1")
	child.Env = append(os.Environ(), helperEnv+"="+srv.Endpoint()+" "+prefix)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if line != "leading\n" {
		t.Fatalf("the helper leader said %q (%v)", line, err)
	}

	b := open(t, srv.Endpoint(), prefix, "survivor")
	bLeads := make(chan error, 1)
	go func() { bLeads <- b.Campaign(context.Background()) }()
	waitCandidates(t, b, 2)
	wantNotLeader(t, b, "owner", "survivor-too-early")
	wantValue(t, b, "owner", "child")

	killed := time.Now()
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := <-bLeads; err != nil {
		t.Fatalf("Campaign after the leader was killed: %v", err)
	}
	t.Logf("took over %v after SIGKILL of the leader (lease TTL %v)", time.Since(killed).Round(time.Millisecond), testTTL)
	commit(t, b, "owner", "survivor")
	if who, _ := b.Leader(context.Background()); who != "survivor" {
		t.Fatalf("Leader() = %q, want survivor", who)
	}
}

// TestLeaderCutOffIsFenced: a leader whose connection to etcd goes silent
// sees Lost() before the other controller can lead, its Commits fail with
// ErrNotLeader, and none of its writes land once the other has taken over,
// not even when its network comes back.
func TestLeaderCutOffIsFenced(t *testing.T) {
	srv := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, srv.Addr())
	prefix := newPrefix()
	a := open(t, proxy.Endpoint(), prefix, "cut-off")
	b := open(t, srv.Endpoint(), prefix, "survivor")
	lead(t, a)
	commit(t, a, "state", "a-1")
	bLeads := make(chan error, 1)
	go func() { bLeads <- b.Campaign(context.Background()) }()
	waitCandidates(t, b, 2)

	lostA := a.Lost()
	proxy.Cut()
	inflight := make(chan error, 1)
	go func() {
		inflight <- a.Commit(context.Background(), map[string][]byte{"state": []byte("a-in-flight")})
	}()
	<-lostA
	if err := <-inflight; !errors.Is(err, rollout.ErrNotLeader) {
		t.Fatalf("a Commit under way when the lease ran out: %v, want ErrNotLeader", err)
	}
	wantNotLeader(t, a, "state", "a-after-lost")

	if err := <-bLeads; err != nil {
		t.Fatalf("Campaign of the survivor: %v", err)
	}
	commit(t, b, "state", "b-1")

	// The network comes back. The deposed leader still refuses locally;
	// and a write sent with its old fence (as a request delayed in the
	// network would arrive) is refused by etcd itself.
	proxy.Heal()
	wantNotLeader(t, a, "state", "a-after-heal")
	for { // the client reconnects through the healed proxy
		if _, err := a.Get(context.Background(), "state"); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.mu.Lock()
	old := a.term
	a.term = &term{lost: make(chan struct{}), stop: func() {}, lease: old.lease, key: old.key, rev: old.rev}
	a.mu.Unlock()
	err := a.Commit(context.Background(), map[string][]byte{"state": []byte("a-stale-fence")})
	if !errors.Is(err, rollout.ErrNotLeader) || !strings.Contains(err.Error(), "refused by etcd") {
		t.Fatalf("a write with a deposed leader's fence: %v, want etcd to refuse it with ErrNotLeader", err)
	}
	wantValue(t, b, "state", "b-1")
	commit(t, b, "state", "b-2")
}

// TestEtcdPausedThenBack: with etcd frozen (SIGSTOP) the leader loses its
// lead; when etcd returns it can campaign again and write.
func TestEtcdPausedThenBack(t *testing.T) {
	srv := etcdtest.Start(t)
	a := open(t, srv.Endpoint(), newPrefix(), "a")
	lead(t, a)
	commit(t, a, "state", "1")
	lost := a.Lost()
	srv.Pause()
	<-lost
	wantNotLeader(t, a, "state", "while-paused")
	srv.Resume()
	wantNotLeader(t, a, "state", "after-resume-before-campaign")
	lead(t, a)
	if closed(a.Lost()) {
		t.Fatal("Lost() of the new term is already closed")
	}
	commit(t, a, "state", "2")
	wantValue(t, a, "state", "2")
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no endpoints", Config{Prefix: "/x"}, "no etcd endpoints"},
		{"no prefix", Config{Endpoints: []string{"http://127.0.0.1:1"}}, "empty key prefix"},
		{"short ttl", Config{Endpoints: []string{"http://127.0.0.1:1"}, Prefix: "/x", TTL: time.Millisecond}, "under a second"},
		{"cert without key", Config{Endpoints: []string{"https://127.0.0.1:1"}, Prefix: "/x", Cert: "c.pem"}, "needs its key"},
		{"missing CA file", Config{Endpoints: []string{"https://127.0.0.1:1"}, Prefix: "/x", CACert: "/nonexistent/ca.pem"}, "reading CA certificate"},
		{"nobody listening", Config{Endpoints: []string{"http://127.0.0.1:1"}, Prefix: "/x", DialTimeout: 300 * time.Millisecond}, "does not answer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(ctx, c.cfg)
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded, want an error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open: %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestCommitTooManyKeys(t *testing.T) {
	srv := etcdtest.Start(t)
	a := open(t, srv.Endpoint(), newPrefix(), "a")
	lead(t, a)
	puts := map[string][]byte{}
	for i := range DefaultMaxTxnOps + 1 {
		puts[fmt.Sprint(i)] = []byte("x")
	}
	err := a.Commit(context.Background(), puts)
	if err == nil || !strings.Contains(err.Error(), "max-txn-ops") {
		t.Fatalf("Commit of %d keys: %v, want the transaction limit named", len(puts), err)
	}
	if m, _ := a.List(context.Background(), ""); len(m) != 0 {
		t.Fatalf("a refused commit left %d keys", len(m))
	}
}

// TestTLS: a controller with the CA, certificate and key (the
// --etcd-cacert/--etcd-cert/--etcd-key files) leads and writes on an etcd
// that requires client certificates; without a client certificate, or
// without the CA, it cannot connect and the error says what TLS refused.
func TestTLS(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.WithTLS())
	files := srv.TLS()
	prefix := newPrefix()
	base := Config{Endpoints: []string{srv.Endpoint()}, Prefix: prefix, TTL: testTTL, DialTimeout: 2 * time.Second}

	cfg := base
	cfg.CACert, cfg.Cert, cfg.Key = files.CACert, files.Cert, files.Key
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open with the client certificate: %v", err)
	}
	defer s.Close()
	lead(t, s)
	commit(t, s, "state", "over-tls")
	wantValue(t, s, "state", "over-tls")

	for name, c := range map[string]Config{
		"no client certificate": {CACert: files.CACert},
		"unknown CA":            {Cert: files.Cert, Key: files.Key},
	} {
		c.Endpoints, c.Prefix, c.TTL, c.DialTimeout = base.Endpoints, base.Prefix, base.TTL, 700*time.Millisecond
		if s, err := Open(context.Background(), c); err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded against etcd with --client-cert-auth", name)
		} else if !strings.Contains(err.Error(), "does not answer") || !strings.Contains(err.Error(), "(TLS to ") {
			t.Errorf("%s: %v", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestListPages: List reads more keys than one page of etcd replies and
// returns every one, and only those under the prefix.
func TestListPages(t *testing.T) {
	srv := etcdtest.Start(t)
	a := open(t, srv.Endpoint(), newPrefix(), "a")
	lead(t, a)
	const n = listPage + 150
	puts := map[string][]byte{}
	for i := range n {
		puts[fmt.Sprintf("host/h%05d", i)] = []byte(fmt.Sprint(i))
		if len(puts) == DefaultMaxTxnOps || i == n-1 {
			if err := a.Commit(context.Background(), puts); err != nil {
				t.Fatal(err)
			}
			puts = map[string][]byte{}
		}
	}
	commit(t, a, "hosts-total", fmt.Sprint(n)) // sorts after host/, outside the prefix
	got, err := a.List(context.Background(), "host/")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("List returned %d keys, want %d", len(got), n)
	}
	for i := range n {
		if v := got[fmt.Sprintf("host/h%05d", i)]; string(v) != fmt.Sprint(i) {
			t.Fatalf("host/h%05d = %q", i, v)
		}
	}
}
