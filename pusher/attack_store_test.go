package pusher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"gopkg.in/yaml.v3"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
)

// Attack 4: a hostile store, holding no signing key. It mirrors a validly
// signed image (manifest and signature as published) and answers the
// rest with bombs: a zstd frame of about 33 KB that inflates to 1 GiB,
// served as the manifest, the image index, chunk lists or chunks, or
// chunk bodies that never end, fetched in parallel. A real agent process syncs
// from it; its peak RSS stays under maxAgentRSS and the sync (or, for the
// index, the log) names the refused object and its limit.

// bombSize is what the bomb inflates to.
const bombSize = 1 << 30

var (
	bombOnce sync.Once
	bomb     []byte
)

// zstdBomb is one zstd frame of bombSize zeros made of RLE blocks (a
// 3-byte header and the byte repeated, 128 KiB a block): 32 KB. Its
// header declares no content size, so only a bound while decoding stops
// it.
func zstdBomb(t testing.TB) []byte {
	bombOnce.Do(func() {
		const block = 128 << 10
		// Magic; a descriptor without content size or checksum; a window
		// of 128 KiB (exponent 7).
		b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3}
		for i := range bombSize / block {
			h := uint32(block)<<3 | 1<<1 // RLE
			if i == bombSize/block-1 {
				h |= 1 // the last block
			}
			b = append(b, byte(h), byte(h>>8), byte(h>>16), 0)
		}
		bomb = b
	})
	return bomb
}

// hostileStore serves the store in dir over HTTP, except that evil
// answers the paths it wants to (returning true).
func hostileStore(t testing.TB, dir string, evil func(w http.ResponseWriter, r *http.Request) bool) string {
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !evil(w, r) {
			files.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// bombImage publishes and signs an image of 8 files of 1.5 MiB of random
// bytes: each is several chunks, so a sync fetches chunk lists (without
// an index) and up to 8×4 chunks at once.
func bombImage(t testing.TB, f *fixture) images.Digest {
	t.Helper()
	root := t.TempDir()
	tree{"usr": "dir", "usr/lib": "dir", "var": "dir", "var/lib": "dir"}.make(t, root)
	r := rand.New(rand.NewPCG(4, 4))
	for i := range 8 {
		b := make([]byte, 3<<19)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("usr/lib/big%d", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, _ := f.publish(t, root)
	return d
}

func TestAttackStoreBombs(t *testing.T) {
	base := attackDir(t)
	bin := ingotBinary(t)
	f := newFixture(t)
	d := bombImage(t, f)
	zb := zstdBomb(t)
	if n, err := zstdInflated(zb); err != nil || n != bombSize {
		t.Fatalf("the bomb decodes to %d bytes, %v", n, err)
	}
	t.Logf("the bomb: %d bytes of zstd inflating to %d MiB", len(zb), bombSize>>20)
	serveBomb := func(w http.ResponseWriter) {
		w.Header().Set("Content-Length", fmt.Sprint(len(zb)))
		w.Write(zb)
	}
	endless := func(w http.ResponseWriter) {
		// No Content-Length: zeros until the client hangs up.
		buf := make([]byte, 64<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}
	// Layout v2 keeps chunks in packs, read by range: the hostile server
	// answers a range request with a 206 for exactly that range, whose
	// bytes are the bomb (padded to the length asked) or never end.
	rangeBomb := func(w http.ResponseWriter, r *http.Request) {
		var a, b int64
		if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &a, &b); err != nil {
			serveBomb(w)
			return
		}
		body := make([]byte, b-a+1)
		copy(body, zb)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, b+1))
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(body)
	}
	rangeEndless := func(w http.ResponseWriter, r *http.Request) {
		var a, b int64
		fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &a, &b)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b, b+1))
		w.WriteHeader(http.StatusPartialContent)
		endless(w)
	}
	index := "/images/" + d.String()
	for _, tc := range []struct {
		name string
		evil func(w http.ResponseWriter, r *http.Request) bool
		// want: in the output of the agent; fail: the sync must fail.
		want string
		fail bool
	}{
		{"index", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != index {
				return false
			}
			serveBomb(w)
			return true
		}, "a file of images may hold", false},
		{"manifest", func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/objects/"+d.String()[:2]+"/"+d.String() {
				return false
			}
			serveBomb(w)
			return true
		}, "a file of objects may hold", true},
		{"chunk lists", func(w http.ResponseWriter, r *http.Request) bool {
			switch {
			case r.URL.Path == index:
				http.NotFound(w, r)
			case strings.HasPrefix(r.URL.Path, "/lists/"):
				serveBomb(w)
			default:
				return false
			}
			return true
		}, "a file of lists may hold", true},
		{"chunks", func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasPrefix(r.URL.Path, "/packs/") {
				return false
			}
			rangeBomb(w, r)
			return true
		}, "a frame of a pack may hold", true},
		{"endless chunks", func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasPrefix(r.URL.Path, "/packs/") {
				return false
			}
			rangeEndless(w, r)
			return true
		}, "the body is more than", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := hostileStore(t, f.store, tc.evil)
			root := filepath.Join(base, strings.ReplaceAll(tc.name, " ", "-"))
			os.Mkdir(root, 0o755)
			c := agentConfig{Root: root, Stores: []string{url}, TrustedKeys: []string{f.writeTrusted(t)}, Retries: 1, Backoff: time.Millisecond}
			b, _ := yaml.Marshal(c)
			conf := filepath.Join(base, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			os.WriteFile(conf, b, 0o644)
			// The address space limit keeps a regression from taking the
			// machine with it: it dies of "out of memory" instead.
			cmd := exec.Command("prlimit", "--as=4294967296", "--", bin, "agent", "--config", conf, "--sync", d.String())
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			err := cmd.Run()
			rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
			t.Logf("sync ended in %v (%v); the agent's peak RSS was %d MiB (bound %d MiB)", time.Since(start).Round(time.Millisecond), err, rss>>20, maxAgentRSS>>20)
			if rss > maxAgentRSS {
				t.Errorf("the agent's peak RSS was %d MiB facing the %s bomb; the bound is %d MiB", rss>>20, tc.name, maxAgentRSS>>20)
			}
			if tc.fail && err == nil {
				t.Errorf("the sync from the hostile store succeeded:\n%s", out.String())
			}
			if !tc.fail && err != nil {
				t.Errorf("the sync failed, but the index is optional (chunk lists are fetched instead): %v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), tc.want) || !strings.Contains(out.String(), store.ErrTooLarge.Error()) {
				t.Errorf("the agent's output does not name the refused object and its limit (%q):\n%.3000s", tc.want, out.String())
			}
		})
	}
}

// The same bounds hold in-process, where a test can see the error values.
func TestStoreSourceRefusesBombs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	d := bombImage(t, f)
	zb := zstdBomb(t)
	url := hostileStore(t, f.store, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/lists/") || r.URL.Path == "/images/"+d.String() {
			w.Write(zb)
			return true
		}
		return false
	})
	src := httpSource(t, url)
	mb, err := src.Manifest(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	m, err := images.ParseManifest(bytes.NewReader(mb))
	if err != nil {
		t.Fatal(err)
	}
	var e *images.Entry
	for i := range m.Entries {
		if m.Entries[i].Type == images.TypeFile {
			e = &m.Entries[i]
			break
		}
	}
	st, err := store.OpenHTTP(url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.IndexOf(ctx, d, store.IndexLimit(m)); !isTooLarge(err) {
		t.Errorf("IndexOf a bomb: %v, want ErrTooLarge", err)
	}
	if _, err := st.FileChunksOf(ctx, e.SHA256, e.Size); !isTooLarge(err) {
		t.Errorf("FileChunksOf a bomb: %v, want ErrTooLarge", err)
	}
	if _, err := src.Chunks(ctx, e.SHA256, e.Size); !isTooLarge(err) {
		t.Errorf("StoreSource.Chunks of a bomb: %v, want ErrTooLarge", err)
	}
}

func isTooLarge(err error) bool { return errors.Is(err, store.ErrTooLarge) }

// zstdInflated is what b decodes to, counted as it streams (the test's
// own check that the bomb is what it says, in little memory).
func zstdInflated(b []byte) (int64, error) {
	dec, err := zstd.NewReader(bytes.NewReader(b), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return 0, err
	}
	defer dec.Close()
	return io.Copy(io.Discard, dec)
}
