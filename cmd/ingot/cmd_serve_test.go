package main

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/internal/cli"
)

// syncBuffer is a bytes.Buffer safe for the server's log and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// `ingot serve` serves a store that `ingot image export` can read back
// over HTTP, logs each request, and stops cleanly when its context ends.
func TestServeCommand(t *testing.T) {
	work := t.TempDir()
	sdir := filepath.Join(work, "store")
	in := writeFile(t, filepath.Join(work, "a.tar"), tarOf(t, tentry{name: "f", typ: tar.TypeReg, body: strings.Repeat("served over http\n", 40000)}))
	if code, _, errOut := runIn(t, sdir, nil, "image", "import", in, "--name", "web:v1"); code != cli.ExitOK {
		t.Fatal(errOut)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan int)
	go func() {
		app := &cli.App{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &logs,
			Args: []string{"--store", sdir, "serve", "--listen", addr, "--bwlimit", "50M"}, Getenv: func(string) string { return "" }}
		done <- app.Execute(ctx)
	}()
	url := "http://" + addr + "/"
	for i := 0; ; i++ {
		resp, err := http.Get(url + "ingot-store")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 200 {
			t.Fatalf("server did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, remote, errOut := runIn(t, url, nil, "image", "export", "web:v1", "-o", "-")
	_, local, _ := runIn(t, sdir, nil, "image", "export", "web:v1", "-o", "-")
	if code != cli.ExitOK || remote != local {
		t.Errorf("export through ingot serve: exit %d, %d bytes (local %d)\n%s", code, len(remote), len(local), errOut)
	}
	cancel()
	if code := <-done; code != cli.ExitOK && code != cli.ExitSignal {
		t.Errorf("serve exited %d after cancel\n%s", code, logs.String())
	}
	if !strings.Contains(logs.String(), "path=/refs/web/v1 status=200") {
		t.Errorf("no request log line for the ref:\n%s", logs.String())
	}
}
