package pusher

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/glob"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher/fetch"
	"github.com/ingotfleet/ingot/pusher/signing"
)

// tree is a small root described as path → spec; specs: "dir", "file:CONTENT",
// "link:TARGET", "hard:PATH", "fifo", "char:1:3". Options after "|":
// mode=0755 uid=N xattr=user.k=v mtime=N.
type tree map[string]string

func (tr tree) make(t testing.TB, root string) {
	t.Helper()
	paths := make([]string, 0, len(tr))
	for p := range tr {
		paths = append(paths, p)
	}
	// parents first
	for i := range paths {
		for j := i + 1; j < len(paths); j++ {
			if images.ComparePaths(paths[j], paths[i]) < 0 {
				paths[i], paths[j] = paths[j], paths[i]
			}
		}
	}
	// Hardlinks last: their targets may sort after them.
	slices.SortStableFunc(paths, func(a, b string) int {
		ha, hb := strings.HasPrefix(tr[a], "hard:"), strings.HasPrefix(tr[b], "hard:")
		switch {
		case ha && !hb:
			return 1
		case hb && !ha:
			return -1
		}
		return 0
	})
	for _, p := range paths {
		spec, opts, _ := strings.Cut(tr[p], "|")
		abs := filepath.Join(root, p)
		kind, arg, _ := strings.Cut(spec, ":")
		var err error
		switch kind {
		case "dir":
			err = os.MkdirAll(abs, 0o755)
		case "file":
			err = os.WriteFile(abs, []byte(arg), 0o644)
		case "big":
			var n int
			fmt.Sscan(arg, &n)
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(i*7 + i/1000)
			}
			err = os.WriteFile(abs, b, 0o644)
		case "link":
			err = os.Symlink(arg, abs)
		case "hard":
			err = os.Link(filepath.Join(root, arg), abs)
		case "fifo":
			err = unix.Mkfifo(abs, 0o644)
		case "char":
			var maj, min uint32
			fmt.Sscanf(arg, "%d:%d", &maj, &min)
			err = unix.Mknod(abs, unix.S_IFCHR|0o644, int(unix.Mkdev(maj, min)))
		default:
			t.Fatalf("bad spec %q", spec)
		}
		if err != nil {
			t.Fatal(err)
		}
		mtime := int64(1700000000)
		for _, o := range strings.Fields(opts) {
			k, v, _ := strings.Cut(o, "=")
			switch k {
			case "mode":
				var m uint32
				fmt.Sscanf(v, "%o", &m)
				err = unix.Chmod(abs, m)
			case "uid":
				var id int
				fmt.Sscan(v, &id)
				err = os.Lchown(abs, id, id)
			case "xattr":
				xk, xv, _ := strings.Cut(v, "=")
				err = unix.Lsetxattr(abs, xk, []byte(xv), 0)
			case "mtime":
				fmt.Sscan(v, &mtime)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		ts := []unix.Timespec{{Sec: mtime}, {Sec: mtime}}
		unix.UtimesNanoAt(unix.AT_FDCWD, abs, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	// Directory mtimes again, children first, since making children moved them.
	for i := len(paths) - 1; i >= 0; i-- {
		if strings.HasPrefix(tr[paths[i]], "dir") {
			ts := []unix.Timespec{{Sec: 1700000000}, {Sec: 1700000000}}
			unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, paths[i]), ts, unix.AT_SYMLINK_NOFOLLOW)
		}
	}
	unix.UtimesNanoAt(unix.AT_FDCWD, root, []unix.Timespec{{Sec: 1700000000}, {Sec: 1700000000}}, 0)
}

// fixture is a store with images published from trees, signed by key.
type fixture struct {
	store string
	key   signing.PrivateKey
	st    *store.Store
}

func newFixture(t testing.TB) *fixture {
	key, err := signing.Generate("test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &fixture{store: dir, key: key, st: st}
}

// writeTrusted writes f's public key to a file for agent configs.
func (f *fixture) writeTrusted(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "trusted.pub")
	if err := os.WriteFile(p, []byte(f.key.Public().String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// source reads the fixture's store directory.
func (f *fixture) source(t testing.TB) *fetch.StoreSource {
	t.Helper()
	src, err := fetch.OpenSource([]string{f.store}, fetch.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// httpSource reads a store over HTTP with short backoffs.
func httpSource(t testing.TB, urls ...string) *fetch.StoreSource {
	t.Helper()
	src, err := fetch.OpenSource(urls, fetch.SourceOptions{Backoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// sign replaces image d's signature file with one by key, under a name
// of its own (so no other image is older or newer than it).
func (f *fixture) sign(t testing.TB, d images.Digest, key signing.PrivateKey) {
	t.Helper()
	f.signAs(t, d, key, signing.Statement{Ref: "test:" + d.String()[:16], Generation: 1})
}

// signAs replaces image d's signature file with one by key stating st.
func (f *fixture) signAs(t testing.TB, d images.Digest, key signing.PrivateKey, st signing.Statement) {
	t.Helper()
	if err := f.st.PutSignature(context.Background(), d, []byte(signing.Sign(key, d, st))); err != nil {
		t.Fatal(err)
	}
}

// publishDir records the tree at root as an image of st (numeric owners,
// as the pusher's tests make trees without account files).
func publishDir(t testing.TB, st *store.Store, root string) (images.Digest, *images.Manifest) {
	t.Helper()
	d, m, err := st.ImportDir(context.Background(), root, images.WalkOptions{NumericOwner: true})
	if err != nil {
		t.Fatal(err)
	}
	return d, m
}

func (f *fixture) publish(t testing.TB, root string) (images.Digest, *images.Manifest) {
	t.Helper()
	d, m := publishDir(t, f.st, root)
	f.sign(t, d, f.key)
	return d, m
}

func (f *fixture) publishTree(t testing.TB, tr tree) (images.Digest, *images.Manifest, string) {
	t.Helper()
	root := t.TempDir()
	tr.make(t, root)
	d, m := f.publish(t, root)
	return d, m, root
}

func (f *fixture) syncer(t testing.TB, root string) *Syncer {
	local, err := glob.CompileSet(DefaultLocal)
	if err != nil {
		t.Fatal(err)
	}
	return &Syncer{
		Root:     root,
		StateDir: filepath.Join(root, "var/lib/ingot-agent"),
		Local:    local,
		Trusted:  []signing.PublicKey{f.key.Public()},
	}
}

// rsyncDiff lists what rsync would change to make dst like src (content by
// checksum, hardlinks, perms, owners, devices, xattrs, times), leaving out
// the excluded patterns: an independent check of a synced root.
func rsyncDiff(t testing.TB, src, dst string, excludes ...string) string {
	t.Helper()
	testenv.RequireTool(t, "rsync", "rsync")
	args := []string{"-n", "-a", "-c", "-H", "-X", "--delete", "--itemize-changes", "--numeric-ids"}
	for _, e := range excludes {
		args = append(args, "--exclude", e)
	}
	return runRsyncDiff(t, append(args, src+"/", dst+"/"))
}

func runRsyncDiff(t testing.TB, args []string) string {
	t.Helper()
	out, err := exec.Command("rsync", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rsync: %v\n%s", err, out)
	}
	var diffs []string
	for _, l := range strings.Split(string(out), "\n") {
		if l == "" || strings.HasPrefix(l, "cannot delete non-empty directory") || strings.HasPrefix(l, ".d..t......") && strings.HasSuffix(l, "./") {
			continue
		}
		diffs = append(diffs, l)
	}
	return strings.Join(diffs, "\n")
}

// rsyncExcludes are DefaultLocal in rsync's spelling (anchored at the root).
var rsyncExcludes = []string{"/etc/resolv.conf", "/etc/hostname", "/etc/hosts", "/etc/machine-id",
	"/etc/ssh/ssh_host_*", "/var/log", "/var/lib/ingot-agent", "/home", "/root", "/tmp", "/srv"}

// tmpfsDir mounts a tmpfs of the given size (like "256m") on a new
// directory for the test: fast syncfs, and a disk that can fill up.
func tmpfsDir(t testing.TB, size string) string {
	t.Helper()
	testenv.RequireRoot(t)
	dir, err := os.MkdirTemp("", "ingot-tmpfs-")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		t.Fatalf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		unix.Unmount(dir, unix.MNT_DETACH)
		os.Remove(dir)
	})
	return dir
}

// agentConfig is the part of the agent's config file (pusher/agent.Config)
// the tests that run `ingot agent` as a process write: package agent
// imports this one, so its tests here cannot name agent.Config.
type agentConfig struct {
	Root        string        `yaml:"root"`
	Stores      []string      `yaml:"stores"`
	TrustedKeys []string      `yaml:"trusted_keys"`
	Retries     int           `yaml:"retries,omitempty"`
	Backoff     time.Duration `yaml:"backoff,omitempty"`
}
