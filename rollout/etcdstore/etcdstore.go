package etcdstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/ingotfleet/ingot/rollout"
)

// DefaultTTL is the leader's lease when Config.TTL is zero.
const DefaultTTL = 5 * time.Second

// DefaultMaxTxnOps is etcd's own default limit of operations in one
// transaction (etcd's --max-txn-ops).
const DefaultMaxTxnOps = 128

// listPage is how many keys List asks for at a time.
const listPage = 1000

// Config says where etcd is and how this controller takes part.
type Config struct {
	// Endpoints are etcd's client URLs (http:// or https://).
	Endpoints []string
	// Prefix is the root of this rollout's keys, e.g. "/ingot/rollout/web".
	// Two rollouts with different prefixes never see each other.
	Prefix string
	// Name identifies this controller as a candidate (default
	// hostname/pid); Leader reports it.
	Name string
	// TTL is the leader's lease. A leader that cannot reach etcd loses
	// leadership within it, and a crashed leader is replaced after it.
	// etcd raises TTLs below its minimum (2 s with default settings).
	TTL time.Duration
	// DialTimeout bounds the first connection (default 5 s).
	DialTimeout time.Duration
	// CACert, Cert and Key are PEM files for TLS: the CA that signed
	// etcd's server certificate, and this client's certificate and key
	// when etcd asks for one (--client-cert-auth).
	CACert, Cert, Key string
	// MaxTxnOps is the largest number of keys one Commit may write; it
	// must not exceed etcd's --max-txn-ops (default 128).
	MaxTxnOps int
}

// Store is a rollout.Store and rollout.Elector on etcd. Reads work for any
// controller; Commit only for the leader.
type Store struct {
	cli      *clientv3.Client
	name     string
	ttl      time.Duration
	maxOps   int
	dataPfx  string
	electPfx string

	mu   sync.Mutex
	term *term // the current term, or the next one before Campaign
	bg   sync.WaitGroup
}

var (
	_ rollout.Store   = (*Store)(nil)
	_ rollout.Elector = (*Store)(nil)
)

// term is one candidacy: a lease, the key bound to it and, once leading,
// the revision that key was created at. Store.mu guards the fields after
// lostOnce.
type term struct {
	lost     chan struct{}
	lostOnce sync.Once
	stop     context.CancelFunc // ends the keep-alive loop
	lease    clientv3.LeaseID
	key      string
	rev      int64 // non-zero once this term leads
}

func newTerm() *term { return &term{lost: make(chan struct{}), stop: func() {}} }

func (t *term) isLost() bool {
	select {
	case <-t.lost:
		return true
	default:
		return false
	}
}

// bound returns a context that ends with ctx or when t is lost.
func (t *term) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-t.lost:
			cancel()
		case <-cctx.Done():
		}
	}()
	return cctx, cancel
}

// lose marks t lost and stops its keep-alive loop.
func (s *Store) lose(t *term) {
	t.lostOnce.Do(func() {
		close(t.lost)
		s.mu.Lock()
		stop := t.stop
		s.mu.Unlock()
		stop()
	})
}

// Open connects to etcd. It does not campaign.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcdstore: no etcd endpoints")
	}
	prefix := strings.TrimRight(cfg.Prefix, "/")
	if prefix == "" {
		return nil, errors.New("etcdstore: empty key prefix (say which rollout, e.g. /ingot/rollout/NAME)")
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < time.Second {
		return nil, fmt.Errorf("etcdstore: lease TTL %v is under a second (etcd counts leases in seconds)", cfg.TTL)
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.MaxTxnOps == 0 {
		cfg.MaxTxnOps = DefaultMaxTxnOps
	}
	if cfg.Name == "" {
		h, _ := os.Hostname()
		cfg.Name = fmt.Sprintf("%s/%d", h, os.Getpid())
	}
	tlsCfg, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		TLS:         tlsCfg,
		Context:     context.WithoutCancel(ctx),
		Logger:      zap.NewNop(),
		// gRPC pings notice a dead connection under an idle watch. gRPC
		// pings no more often than every 10 s, and etcd refuses pings
		// more often than every 5 s (--grpc-keepalive-min-time).
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: cfg.TTL,
	})
	if err != nil {
		return nil, fmt.Errorf("etcdstore: connecting to %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	// clientv3.New does not wait for a connection: ask once, so a wrong
	// address is an error here and not at the first Commit.
	sctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := cli.Get(sctx, prefix+"/", clientv3.WithCountOnly()); err != nil {
		_ = cli.Close()    // the Get's error is the one to report
		if tlsCfg != nil { // gRPC hides why a handshake failed: find out
			if terr := probeTLS(cfg.Endpoints[0], tlsCfg, cfg.DialTimeout); terr != nil {
				err = fmt.Errorf("%w (TLS to %s: %v)", err, cfg.Endpoints[0], terr)
			}
		}
		return nil, fmt.Errorf("etcdstore: etcd at %s does not answer: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return &Store{
		cli:      cli,
		name:     cfg.Name,
		ttl:      cfg.TTL,
		maxOps:   cfg.MaxTxnOps,
		dataPfx:  prefix + "/data/",
		electPfx: prefix + "/leader/",
		term:     newTerm(),
	}, nil
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	if cfg.CACert == "" && cfg.Cert == "" && cfg.Key == "" {
		return nil, nil
	}
	if (cfg.Cert == "") != (cfg.Key == "") {
		return nil, errors.New("etcdstore: a client certificate needs its key and a key its certificate (--etcd-cert and --etcd-key)")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CACert != "" {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("etcdstore: reading CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcdstore: %s holds no PEM certificate", cfg.CACert)
		}
		tc.RootCAs = pool
	}
	if cfg.Cert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
		if err != nil {
			return nil, fmt.Errorf("etcdstore: loading client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// probeTLS connects to endpoint with tc and says what went wrong in the
// handshake, including a refusal of the client certificate, which TLS 1.3
// reports only at the first read.
func probeTLS(endpoint string, tc *tls.Config, timeout time.Duration) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil
	}
	c := tc.Clone()
	c.ServerName = u.Hostname()
	c.NextProtos = []string{"h2"}
	d := &net.Dialer{Timeout: timeout}
	conn, err := tls.DialWithDialer(d, "tcp", u.Host, c)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(timeout / 2)); err != nil {
		return err
	}
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	}
	return nil
}

// Get returns the value under key, nil when there is none. An empty value
// is returned as a non-nil empty slice.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	resp, err := s.cli.Get(ctx, s.dataPfx+key)
	if err != nil {
		return nil, fmt.Errorf("etcdstore: get %q: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return value(resp.Kvs[0]), nil
}

func value(kv *mvccpb.KeyValue) []byte {
	if kv.Value == nil {
		return []byte{}
	}
	return kv.Value
}

// List returns every key under prefix with its value, all as of one
// revision even when it takes several requests.
func (s *Store) List(ctx context.Context, prefix string) (map[string][]byte, error) {
	out := map[string][]byte{}
	start := s.dataPfx + prefix
	end := clientv3.GetPrefixRangeEnd(start)
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Get(ctx, start, opts...)
		if err != nil {
			return nil, fmt.Errorf("etcdstore: list %q: %w", prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			out[strings.TrimPrefix(string(kv.Key), s.dataPfx)] = value(kv)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return out, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Commit writes puts in one transaction fenced by this controller's
// leadership. It fails with an error wrapping rollout.ErrNotLeader when
// this controller does not lead, when etcd says its leader key is gone,
// or when the lease runs out while the request is under way (then the
// write may have landed, but only before any other controller led).
func (s *Store) Commit(ctx context.Context, puts map[string][]byte) error {
	t, key, rev := s.leading()
	if t == nil {
		return fmt.Errorf("etcdstore: commit: %w", rollout.ErrNotLeader)
	}
	if len(puts) > s.maxOps {
		return fmt.Errorf("etcdstore: commit of %d keys is over the limit of %d in one etcd transaction (etcd's --max-txn-ops)", len(puts), s.maxOps)
	}
	if len(puts) == 0 {
		return nil
	}
	keys := make([]string, 0, len(puts))
	for k := range puts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ops := make([]clientv3.Op, 0, len(keys))
	for _, k := range keys {
		if v := puts[k]; v == nil {
			ops = append(ops, clientv3.OpDelete(s.dataPfx+k))
		} else {
			ops = append(ops, clientv3.OpPut(s.dataPfx+k, string(v)))
		}
	}
	// A request still waiting when the lease runs out is abandoned.
	cctx, cancel := t.bound(ctx)
	defer cancel()
	resp, err := s.cli.Txn(cctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
		Then(ops...).
		Commit()
	if err != nil {
		if t.isLost() {
			return fmt.Errorf("etcdstore: commit: leadership lost while the write was under way: %w", rollout.ErrNotLeader)
		}
		return fmt.Errorf("etcdstore: commit: %w", err)
	}
	if !resp.Succeeded {
		s.lose(t)
		return fmt.Errorf("etcdstore: commit refused by etcd: this controller's leader key is gone: %w", rollout.ErrNotLeader)
	}
	return nil
}

// leading returns the current term, its key and the key's revision when
// the term leads and is not lost.
func (s *Store) leading() (*term, string, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.term; t.rev != 0 && !t.isLost() {
		return t, t.key, t.rev
	}
	return nil, "", 0
}

// Campaign blocks until this controller leads or ctx ends. Campaigning
// while leading returns at once.
func (s *Store) Campaign(ctx context.Context) error {
	s.mu.Lock()
	t := s.term
	if t.rev != 0 && !t.isLost() {
		s.mu.Unlock()
		return nil
	}
	if t.isLost() {
		t = newTerm()
		s.term = t
	}
	s.mu.Unlock()
	if err := s.campaign(ctx, t); err != nil {
		s.endTerm(t)
		return err
	}
	return nil
}

func (s *Store) campaign(ctx context.Context, t *term) error {
	sent := time.Now()
	g, err := s.cli.Grant(ctx, int64((s.ttl+time.Second-1)/time.Second))
	if err != nil {
		return fmt.Errorf("etcdstore: campaign: granting a lease: %w", err)
	}
	kctx, stop := context.WithCancel(context.Background())
	key := fmt.Sprintf("%s%016x", s.electPfx, int64(g.ID))
	s.mu.Lock()
	t.lease, t.key, t.stop = g.ID, key, stop
	s.mu.Unlock()
	if t.isLost() { // resigned meanwhile
		stop()
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.keepAlive(kctx, t, g.ID, sent.Add(time.Duration(g.TTL)*time.Second), time.Duration(g.TTL)*time.Second)
	}()

	// A campaign abandoned because the lease ran out returns too.
	cctx, cancel := t.bound(ctx)
	defer cancel()

	resp, err := s.cli.Txn(cctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, s.name, clientv3.WithLease(g.ID))).
		Commit()
	if err != nil {
		return s.campaignErr(ctx, t, "writing the candidate key", err)
	}
	rev := resp.Header.Revision
	// Wait until every candidate that came before is gone.
	if err := s.waitPredecessors(cctx, rev-1); err != nil {
		return s.campaignErr(ctx, t, "waiting for the leader", err)
	}
	// The lease may have run out while waiting: check the key is still
	// ours before claiming the lead.
	got, err := s.cli.Get(cctx, key)
	if err != nil {
		return s.campaignErr(ctx, t, "checking the candidate key", err)
	}
	if len(got.Kvs) == 0 || got.Kvs[0].CreateRevision != rev {
		return fmt.Errorf("etcdstore: campaign: the lease ran out before this controller led: %w", rollout.ErrNotLeader)
	}
	s.mu.Lock()
	t.rev = rev
	s.mu.Unlock()
	return nil
}

func (s *Store) campaignErr(ctx context.Context, t *term, what string, err error) error {
	if ctx.Err() == nil && t.isLost() {
		return fmt.Errorf("etcdstore: campaign: the lease ran out while %s: %w", what, rollout.ErrNotLeader)
	}
	return fmt.Errorf("etcdstore: campaign: %s: %w", what, err)
}

// waitPredecessors returns once no candidate key created at or before
// maxRev is left.
func (s *Store) waitPredecessors(ctx context.Context, maxRev int64) error {
	for {
		opts := append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(maxRev))
		resp, err := s.cli.Get(ctx, s.electPfx, opts...)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		if err := s.waitDeleted(ctx, string(resp.Kvs[0].Key), resp.Header.Revision); err != nil {
			return err
		}
	}
}

// waitDeleted watches key from rev on until it is deleted.
func (s *Store) waitDeleted(ctx context.Context, key string, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wr := range s.cli.Watch(clientv3.WithRequireLeader(wctx), key, clientv3.WithRev(rev)) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("watch on the leader key ended")
}

// keepAlive renews t's lease every third of its TTL and marks t lost when
// the lease is gone or when deadline passes without a renewal. The
// deadline counts from when the last successful renewal was sent, which
// is no later than when etcd renewed the lease, so this side gives up
// first.
func (s *Store) keepAlive(ctx context.Context, t *term, lease clientv3.LeaseID, deadline time.Time, ttl time.Duration) {
	expire := time.NewTimer(time.Until(deadline))
	defer expire.Stop()
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-expire.C:
			s.lose(t)
			s.revokeLater(lease)
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		sent := time.Now()
		resp, err := s.cli.KeepAliveOnce(rctx, lease)
		cancel()
		switch {
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			s.lose(t)
			return
		case err != nil:
			continue // the deadline decides
		case resp.TTL <= 0:
			s.lose(t)
			return
		}
		deadline = sent.Add(time.Duration(resp.TTL) * time.Second)
		expire.Reset(time.Until(deadline))
	}
}

// revokeLater tries once to revoke a lease given up on this side, so that
// when etcd is in fact reachable the next candidate need not wait for the
// lease to expire there.
func (s *Store) revokeLater(lease clientv3.LeaseID) {
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), s.ttl)
		defer cancel()
		_, _ = s.cli.Revoke(ctx, lease) // best effort: an unrevoked lease expires within ttl
	}()
}

// endTerm gives t up: marks it lost and revokes its lease.
func (s *Store) endTerm(t *term) {
	s.lose(t)
	s.mu.Lock()
	lease := t.lease
	s.mu.Unlock()
	if lease != 0 {
		s.revokeLater(lease)
	}
}

// Lost is closed when the current term's leadership is lost. Before the
// first Campaign it belongs to the coming term; after a loss, the next
// Campaign starts a new term with a new channel.
func (s *Store) Lost() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.term.lost
}

// Resign gives leadership up at once: the lease is revoked, which deletes
// the leader key, and Lost closes.
func (s *Store) Resign(ctx context.Context) error {
	s.mu.Lock()
	t, lease := s.term, s.term.lease
	s.mu.Unlock()
	wasLost := t.isLost()
	s.lose(t)
	if lease == 0 || wasLost {
		return nil
	}
	if _, err := s.cli.Revoke(ctx, lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("etcdstore: resign: revoking the lease (it expires by itself within %v): %w", s.ttl, err)
	}
	return nil
}

// Leader returns the name of the controller that leads now, or "" when
// none does.
func (s *Store) Leader(ctx context.Context) (string, error) {
	resp, err := s.cli.Get(ctx, s.electPfx, clientv3.WithFirstCreate()...)
	if err != nil {
		return "", fmt.Errorf("etcdstore: finding the leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}

// Close resigns (when leading) and disconnects.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.ttl)
	defer cancel()
	// Best effort: closing must disconnect whatever happened to the
	// lease, and a lease not revoked expires within ttl by itself.
	_ = s.Resign(ctx)
	s.bg.Wait()
	return s.cli.Close()
}
