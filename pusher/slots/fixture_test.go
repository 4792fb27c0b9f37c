package slots

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher/agent"
	"github.com/ingotfleet/ingot/pusher/fetch"
	"github.com/ingotfleet/ingot/pusher/signing"
)

// fixture is a store of signed images and a host with two directory slots.
type fixture struct {
	dir, store string
	st         *store.Store
	key        signing.PrivateKey
	trusted    string
	slotA      string
	slotB      string
	slotsState string
	bootFile   string
	gen        uint64 // the last generation signed
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	key, err := signing.Generate("test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := &fixture{dir: dir, store: filepath.Join(dir, "store"), key: key}
	if f.st, err = store.Open(f.store); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.st.Close() })
	f.trusted = filepath.Join(dir, "trusted.pub")
	os.WriteFile(f.trusted, []byte(key.Public().String()+"\n"), 0o644)
	f.slotA, f.slotB = filepath.Join(dir, "slots/a"), filepath.Join(dir, "slots/b")
	os.MkdirAll(f.slotA, 0o755)
	os.MkdirAll(f.slotB, 0o755)
	f.slotsState = filepath.Join(dir, "data/ingot-slots")
	f.bootFile = filepath.Join(dir, "data/boot.json")
	return f
}

// publish makes an image of files (path → content; "dir" makes a
// directory) and signs it as app:prod, each a generation newer.
func (f *fixture) publish(t *testing.T, files map[string]string) images.Digest {
	t.Helper()
	root := t.TempDir()
	writeTree(t, root, files)
	d, _, err := f.st.ImportDir(context.Background(), root, images.WalkOptions{NumericOwner: true})
	if err != nil {
		t.Fatal(err)
	}
	f.gen++
	if err := f.st.PutSignature(context.Background(), d, []byte(signing.Sign(f.key, d, signing.Statement{Ref: "app:prod", Generation: f.gen}))); err != nil {
		t.Fatal(err)
	}
	return d
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		abs := filepath.Join(root, p)
		if c == "dir" {
			os.MkdirAll(abs, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(abs), 0o755)
		if err := os.WriteFile(abs, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// config writes the host's agent config and returns its path.
func (f *fixture) config(t *testing.T, extra string) string {
	t.Helper()
	p := filepath.Join(f.dir, "agent.yaml")
	c := fmt.Sprintf(`root: %s
stores: [%s]
trusted_keys: [%s]
slots:
  a: {dir: %s}
  b: {dir: %s}
  state_dir: %s
  keep: [/srv]
  boot: {type: file, file: %s}
  etc_policies:
    - {path: etc/ssh/sshd_config, policy: merge-lines}
    - {path: etc/both.conf, policy: take-image}
%s`, f.slotA, f.store, f.trusted, f.slotA, f.slotB, f.slotsState, f.bootFile, extra)
	os.WriteFile(p, []byte(c), 0o644)
	return p
}

// manager makes the agent and slot manager of the config as a booting
// host would.
func (f *fixture) manager(t *testing.T, conf string) *Manager {
	t.Helper()
	c, err := agent.LoadConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Prepare(c)
	if err != nil {
		t.Fatal(err)
	}
	ag, err := agent.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := New(ag, b, nil)
	ag.Slots = m
	return m
}

func (f *fixture) source(t *testing.T) *fetch.StoreSource {
	src, err := fetch.OpenSource([]string{f.store}, fetch.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// treeSum is a digest of everything under root (paths, types, modes,
// owners, contents, link targets, mtimes): equal sums, equal trees.
func treeSum(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		sys := fi.Sys().(*syscall.Stat_t)
		l := fmt.Sprintf("%s %v %d:%d %d %v", rel, fi.Mode(), sys.Uid, sys.Gid, fi.Size(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			s := sha256.Sum256(b)
			l += " " + hex.EncodeToString(s[:])
		case fi.Mode()&fs.ModeSymlink != 0:
			tg, _ := os.Readlink(p)
			l += " -> " + tg
		}
		lines = append(lines, l)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	s := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(s[:])
}

// ingotBinary builds the ingot command once per test run.
func ingotBinary(t *testing.T) string { return testenv.IngotBinary(t) }

// ingotCrashBinary is ingotBinary with the crash tests' hook
// (testenv.IngotCrashBinary).
func ingotCrashBinary(t *testing.T) string { return testenv.IngotCrashBinary(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.RemoveIngotBinary()
	os.Exit(code)
}
