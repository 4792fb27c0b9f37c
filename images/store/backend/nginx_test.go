package backend_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/images/store/storetest"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// documentedNginx returns the nginx server block of docs/store.md: the
// test serves the store with exactly what the documentation tells users.
func documentedNginx(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../../../docs/store.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```nginx\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/store.md has no ```nginx block")
	}
	return string(m[1])
}

// startNginx serves dir with the documented server block and returns the
// base URL.
func startNginx(t *testing.T, dir string) string {
	t.Helper()
	nginx := testenv.RequireTool(t, "nginx", "nginx")
	run := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	server := documentedNginx(t)
	server = strings.Replace(server, "listen 8080;", "listen "+addr+";", 1)
	server = strings.Replace(server, "root /var/lib/ingot/store;", "root "+dir+";", 1)
	if !strings.Contains(server, addr) || !strings.Contains(server, dir) {
		t.Fatalf("the documented nginx block no longer has the listen and root lines the test replaces:\n%s", server)
	}
	conf := fmt.Sprintf(`user root;
worker_processes 1;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 64; }
http {
  access_log %[1]s/access.log;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
%[2]s
}
`, run, server)
	confPath := filepath.Join(run, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-c", confPath, "-p", run, "-g", "daemon off;")
	out, err := os.Create(filepath.Join(run, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		out.Close()
	})
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 200 {
			b, _ := os.ReadFile(filepath.Join(run, "error.log"))
			e, _ := os.ReadFile(filepath.Join(run, "stderr"))
			t.Fatalf("nginx did not start: %v\n%s\n%s", err, b, e)
		}
		time.Sleep(25 * time.Millisecond)
	}
	return "http://" + addr
}

// The store layout served by a real nginx with the configuration of
// docs/store.md passes the same conformance suite as ingot's own server,
// read directly and through the decorators (counted and retrying, behind
// a mirror that is down).
func TestNginxConformance(t *testing.T) {
	testenv.RequireRoot(t)
	for _, decorated := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "decorated"}[decorated], func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) (backend.Backend, backend.Backend) {
				dir := filepath.Join(t.TempDir(), "store")
				local, err := backend.OpenLocal(dir)
				if err != nil {
					t.Fatal(err)
				}
				b, err := backend.NewHTTP(startNginx(t, dir))
				if err != nil {
					t.Fatal(err)
				}
				if !decorated {
					return local, b
				}
				var c backend.Counts
				dead, err := backend.NewHTTP(deadURL(t))
				if err != nil {
					t.Fatal(err)
				}
				return local, backend.NewFailover(backend.Count(backend.Retry(dead, 1, time.Millisecond), &c),
					backend.Count(backend.Retry(b, 1, time.Millisecond), &c))
			})
		})
	}
}

// deadURL is the URL of a port nothing listens on.
func deadURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

func TestNginxServesOnlyTheLayout(t *testing.T) {
	testenv.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "store")
	w, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkServesOnlyLayout(t, startNginx(t, dir), dir, w, false)
}
