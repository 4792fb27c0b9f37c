package etcdtest

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/internal/testenv"
)

// Server is one etcd process. Its data directory survives Kill and
// Restart, so a test can check what etcd made durable.
type Server struct {
	t        testing.TB
	bin      string
	dir      string
	client   string // host:port for clients
	peer     string // host:port for the (single) peer
	metrics  string // host:port for /health, plain HTTP even with TLS
	tls      *TLSFiles
	log      *syncBuffer
	mu       sync.Mutex
	cmd      *exec.Cmd
	waitDone chan struct{}
}

// Option changes how Start runs etcd.
type Option func(*Server)

// WithTLS serves clients over TLS only, with a certificate from a new test
// CA, and requires client certificates signed by that CA
// (--client-cert-auth). Server.TLS gives the files a client needs.
func WithTLS() Option {
	return func(s *Server) { s.tls = &TLSFiles{} }
}

// Start runs a single-node etcd and waits until it answers. It fails t,
// naming the package to install, when etcd is not on this machine.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin := "/usr/bin/etcd"
	if _, err := os.Stat(bin); err != nil {
		bin = testenv.RequireTool(t, "etcd", "etcd-server")
	}
	s := &Server{
		t:       t,
		bin:     bin,
		dir:     t.TempDir(),
		client:  freeAddr(t),
		peer:    freeAddr(t),
		log:     &syncBuffer{},
		metrics: freeAddr(t),
	}
	for _, o := range opts {
		o(s)
	}
	if s.tls != nil {
		*s.tls = writeTLSFiles(t, s.dir)
	}
	// A free port may be taken by another process before etcd binds it:
	// then try new ports.
	for try := 1; !s.start(try < 3); try++ {
		s.client, s.peer, s.metrics = freeAddr(t), freeAddr(t), freeAddr(t)
		s.dir = t.TempDir()
		if s.tls != nil {
			*s.tls = writeTLSFiles(t, s.dir)
		}
	}
	t.Cleanup(s.Kill)
	return s
}

// Endpoint is the URL clients connect to.
func (s *Server) Endpoint() string { return s.scheme() + "://" + s.client }

func (s *Server) scheme() string {
	if s.tls != nil {
		return "https"
	}
	return "http"
}

// TLS returns the CA, client certificate and client key files of a server
// started WithTLS, nil otherwise.
func (s *Server) TLS() *TLSFiles { return s.tls }

// Addr is the host:port clients connect to (for a Proxy).
func (s *Server) Addr() string { return s.client }

// Log is what etcd printed so far, for failure messages.
func (s *Server) Log() string { return s.log.String() }

// start runs etcd and waits until it is ready. When etcd exits first
// because a port was in use and mayRetry, it returns false.
func (s *Server) start(mayRetry bool) bool {
	s.t.Helper()
	args := []string{
		"--name", "test",
		"--data-dir", filepath.Join(s.dir, "data"),
		"--listen-client-urls", s.Endpoint(),
		"--advertise-client-urls", s.Endpoint(),
		"--listen-peer-urls", "http://" + s.peer,
		"--initial-advertise-peer-urls", "http://" + s.peer,
		"--initial-cluster", "test=http://" + s.peer,
		"--initial-cluster-state", "new",
		"--listen-metrics-urls", "http://" + s.metrics,
		"--log-level", "warn",
		"--logger", "zap",
	}
	if s.tls != nil {
		args = append(args,
			"--cert-file", s.tls.serverCert,
			"--key-file", s.tls.serverKey,
			"--trusted-ca-file", s.tls.CACert,
			"--client-cert-auth")
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	// etcd 3.4 refuses to start on architectures other than amd64 without
	// this; on amd64 it is ignored.
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting etcd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }() // killed by the test: its exit status says nothing
	s.mu.Lock()
	s.cmd, s.waitDone = cmd, done
	s.mu.Unlock()
	return s.waitHealthy(done, mayRetry)
}

// waitHealthy polls etcd's /health until it reports true; it fails the
// test if etcd exits first.
func (s *Server) waitHealthy(exited <-chan struct{}, mayRetry bool) bool {
	s.t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-exited:
			if mayRetry && strings.Contains(s.log.String(), "address already in use") {
				s.mu.Lock()
				s.cmd = nil
				s.mu.Unlock()
				s.log.Reset()
				return false
			}
			s.t.Fatalf("etcd exited before it was ready:\n%s", s.log.String())
		default:
		}
		resp, err := hc.Get("http://" + s.metrics + "/health")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(`"true"`)) {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops etcd with SIGKILL (no clean shutdown) and waits for it.
// Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.waitDone
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	// Errors only when etcd is gone already, which is what is wanted.
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused etcd must still die
	_ = cmd.Process.Kill()
	<-done
}

// Restart kills etcd and starts it again on the same data directory and
// ports.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start(false)
}

// Pause stops etcd with SIGSTOP: its sockets stay open but nothing is
// answered, as with a host that hangs.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused etcd.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig) // fails only if etcd exited, which the test then sees
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 { // keep the start and stop growing
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Proxy forwards TCP connections from a loopback port to etcd. Cut makes
// it a black hole (connections stay open, bytes go nowhere, new ones are
// accepted and never served), as a network partition would; Heal undoes
// that for new connections.
type Proxy struct {
	t      testing.TB
	l      net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
}

// NewProxy listens on a free loopback port and forwards to target.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, l: l, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		// Tearing down the proxy: nothing left to tell a close's error to.
		_ = l.Close()
		p.mu.Lock()
		for c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

// Endpoint is the URL clients connect to instead of etcd's.
func (p *Proxy) Endpoint() string { return "http://" + p.l.Addr().String() }

// Cut stops all traffic through the proxy, in both directions, without
// closing anything: the client sees silence, not an error.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
}

// Heal closes the connections that were cut and lets new ones through.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	for c := range p.conns {
		_ = c.Close() // cutting the held connections is the point
		delete(p.conns, c)
	}
}

func (p *Proxy) isCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

func (p *Proxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
}

func (p *Proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.track(c)
		go p.forward(c)
	}
}

func (p *Proxy) forward(c net.Conn) {
	if p.isCut() {
		return // held open, never served, closed by Heal or cleanup
	}
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close() // etcd unreachable: the client sees its connection drop
		return
	}
	p.track(u)
	go p.pump(u, c)
	p.pump(c, u)
}

// pump copies from src to dst until either closes; while the proxy is cut
// it reads and drops, so the sender's writes do not fail.
func (p *Proxy) pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.isCut() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				_ = src.Close() // the copy failed: end both sides
				return
			}
		}
		if err != nil {
			_ = dst.Close() // the source ended: pass the end on
			return
		}
	}
}
