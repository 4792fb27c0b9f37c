package pusher

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/internal/testenv"
)

const nginxConf = `
user root;
worker_processes 1;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 256; }
http {
  access_log %[1]s/access.log;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  proxy_cache_path %[1]s/cache levels=1:2 keys_zone=ingot:10m max_size=1g inactive=1d use_temp_path=off;
  server {
    listen %[2]s;
    location / {
      proxy_pass %[3]s;
      proxy_cache ingot;
      proxy_cache_valid 200 1d;
      proxy_cache_lock on;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      add_header X-Cache-Status $upstream_cache_status;
    }
  }
}
`

// startNginx runs a real nginx as a caching proxy in front of origin and
// returns its base URL.
func startNginx(t testing.TB, origin string) string {
	t.Helper()
	nginx := testenv.RequireTool(t, "nginx", "nginx")
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	conf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, dir, addr, origin)), 0o644)
	cmd := exec.Command(nginx, "-c", conf, "-p", dir, "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 200 {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not start: %v\n%s", err, b)
		}
		time.Sleep(25 * time.Millisecond)
	}
	return "http://" + addr
}

func TestNginxCache(t *testing.T) {
	testenv.RequireRoot(t)
	ctx := context.Background()
	f := newFixture(t)
	da, _, srcA := f.publishTree(t, treeA)
	var originObjects atomic.Int64
	fs := http.FileServer(http.Dir(f.store))
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/objects/") {
			originObjects.Add(1)
		}
		fs.ServeHTTP(w, r)
	}))
	defer origin.Close()
	proxy := startNginx(t, origin.URL)

	var perHost []int64
	for i := 0; i < 2; i++ {
		root := filepath.Join(t.TempDir(), "root")
		os.MkdirAll(root, 0o755)
		s := f.syncer(t, root)
		src := httpSource(t, proxy)
		before := originObjects.Load()
		res := s.Sync(ctx, da, src, SyncOptions{})
		if !res.OK {
			t.Fatalf("host %d: %s", i+1, res.Error)
		}
		if d := rsyncDiff(t, srcA, root, rsyncExcludes...); d != "" {
			t.Fatalf("host %d not at A:\n%s", i+1, d)
		}
		_, reqs, _ := src.Stats()
		perHost = append(perHost, originObjects.Load()-before)
		t.Logf("host %d: %d requests to nginx, %d object requests reached the store", i+1, reqs, originObjects.Load()-before)
	}
	if perHost[0] == 0 {
		t.Fatal("the first host's objects did not come from the store through nginx")
	}
	if perHost[1] != 0 {
		t.Fatalf("%d object requests of the second host reached the store; want all from nginx's cache", perHost[1])
	}
}
