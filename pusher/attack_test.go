package pusher

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/internal/testenv"
	"github.com/ingotfleet/ingot/pusher/fetch"
)

// The tests of this file are attacks on the agent by a local user
// (uid 1000) of a host, written as the attack: the user's process (this
// test binary, run again with attackEnv set, as uid 1000) makes its move
// at the worst moment, which RaceHook makes exact.

const attackEnv = "INGOT_TEST_ATTACK"

// attackMain runs one move of the attacker: "exchange PATH TARGET"
// atomically swaps PATH with a symlink to TARGET (RENAME_EXCHANGE);
// "fifo PATH" replaces PATH with a FIFO.
func attackMain() int {
	args := strings.Split(os.Getenv(attackEnv), "\x1f")
	var err error
	switch args[0] {
	case "exchange":
		evil := args[1] + ".evil"
		if err = os.Symlink(args[2], evil); err == nil {
			err = unix.Renameat2(unix.AT_FDCWD, evil, unix.AT_FDCWD, args[1], unix.RENAME_EXCHANGE)
		}
	case "fifo":
		if err = os.Remove(args[1]); err == nil {
			err = unix.Mkfifo(args[1], 0o644)
		}
	default:
		err = fmt.Errorf("unknown move %q", args[0])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "attacker:", err)
		return 1
	}
	return 0
}

var (
	attackerOnce sync.Once
	attackerBin  string
	attackerErr  error
)

// attackerBinary is a copy of this test binary that uid 1000 may run
// (go test's build directory is private); TestMain removes it.
func attackerBinary(t testing.TB) string {
	attackerOnce.Do(func() {
		var dir string
		if dir, attackerErr = os.MkdirTemp("", "ingot-attacker-"); attackerErr != nil {
			return
		}
		os.Chmod(dir, 0o755)
		var b []byte
		if b, attackerErr = os.ReadFile(os.Args[0]); attackerErr != nil {
			return
		}
		attackerBin = filepath.Join(dir, "attacker")
		attackerErr = os.WriteFile(attackerBin, b, 0o755)
	})
	if attackerErr != nil {
		t.Fatalf("copying the test binary for the attacker: %v", attackerErr)
	}
	return attackerBin
}

// attack runs one move as uid 1000 and waits for it.
func attack(t testing.TB, move string, args ...string) {
	t.Helper()
	cmd := exec.Command(attackerBinary(t), "-test.run=^$")
	cmd.Env = append(os.Environ(), attackEnv+"="+strings.Join(append([]string{move}, args...), "\x1f"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000, Gid: 1000}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the attacker's %s failed: %v\n%s", move, err, out)
	}
}

// attackDir is a directory that uid 1000 can traverse (t.TempDir's are
// private), owned by root: roots and "outside" files of the attacks.
func attackDir(t testing.TB) string {
	t.Helper()
	testenv.RequireRoot(t)
	d, err := os.MkdirTemp("", "ingot-attack-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o755)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// onRace installs RaceHook for one test: move runs once, at the first
// step and path that match.
func onRace(t testing.TB, step, path string, move func()) {
	done := false
	RaceHook = func(s, p string) {
		if !done && s == step && p == path {
			done = true
			move()
		}
	}
	t.Cleanup(func() { RaceHook = nil })
}

// userTree is A for the swap attacks: a directory of uid 1000 that anyone
// may write (as images ship /var/tmp or a spool), with one inside it.
func userTree() tree {
	return tree{
		"pub":     "dir|mode=0777 uid=1000",
		"pub/d":   "dir|mode=0777 uid=1000",
		"pub/d/f": "file:v1|uid=1000",
		"usr":     "dir",
		"usr/x":   "file:x1",
		"var":     "dir",
		"var/lib": "dir",
	}
}

func syncOK(t testing.TB, s *Syncer, d images.Digest, src fetch.Source) {
	t.Helper()
	if res := s.Sync(context.Background(), d, src, SyncOptions{}); !res.OK {
		t.Fatalf("sync %s: %s", d, res.Error)
	}
}

// Attack 1: the commit sets a directory's mode; the user swaps that
// directory for a symlink to a root-only file just before.
func TestAttackChmodThroughSymlink(t *testing.T) {
	base := attackDir(t)
	f := newFixture(t)
	da, _, _ := f.publishTree(t, userTree())
	tb := userTree()
	tb["pub/d/f"] = "file:v2|uid=1000" // changes pub/d's mtime: an attrs op on pub/d
	db, _, _ := f.publishTree(t, tb)
	secret := filepath.Join(base, "shadow")
	os.WriteFile(secret, []byte("root only"), 0o600)
	root := filepath.Join(base, "root")
	os.Mkdir(root, 0o755)
	s := f.syncer(t, root)
	src := f.source(t)
	syncOK(t, s, da, src)

	onRace(t, "attrs", "pub/d", func() { attack(t, "exchange", filepath.Join(root, "pub/d"), secret) })
	res := s.Sync(context.Background(), db, src, SyncOptions{})
	if res.OK {
		t.Errorf("the sync reported ok after its directory was swapped for a symlink")
	}
	t.Logf("sync error: %s", res.Error)
	var st unix.Stat_t
	unix.Stat(secret, &st)
	if st.Mode&0o7777 != 0o600 || st.Uid != 0 {
		t.Fatalf("the root-only file outside is now mode %04o uid %d (was 0600 uid 0)", st.Mode&0o7777, st.Uid)
	}
	if b, _ := os.ReadFile(secret); string(b) != "root only" {
		t.Fatalf("the file outside changed: %q", b)
	}
}

// Attack 2: a parent directory is swapped (RENAME_EXCHANGE) for a symlink
// to a directory outside the root once the commit has put files in it.
func TestAttackWritesOutsideRoot(t *testing.T) {
	base := attackDir(t)
	f := newFixture(t)
	da, _, _ := f.publishTree(t, userTree())
	tb := userTree()
	for i := 0; i < 40; i++ {
		tb[fmt.Sprintf("pub/d/new%02d", i)] = fmt.Sprintf("file:new %d|mode=4755", i)
	}
	db, _, _ := f.publishTree(t, tb)
	outside := filepath.Join(base, "outside")
	os.Mkdir(outside, 0o755)
	root := filepath.Join(base, "root")
	os.Mkdir(root, 0o755)
	s := f.syncer(t, root)
	src := f.source(t)
	syncOK(t, s, da, src)

	onRace(t, "put", "pub/d/new10", func() { attack(t, "exchange", filepath.Join(root, "pub/d"), outside) })
	res := s.Sync(context.Background(), db, src, SyncOptions{})
	if res.OK {
		t.Errorf("the sync reported ok after a parent was swapped for a symlink")
	}
	t.Logf("sync error: %s", res.Error)
	ents, _ := os.ReadDir(outside)
	if len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("the commit wrote %d files outside the root: %v", len(ents), names)
	}
	// The host is back at A where the commit could reach (the swapped
	// directory is the user's).
	st, _ := s.LoadState()
	if st.Image != da {
		t.Errorf("state is at %s, want A %s", st.Image, da)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "usr/x")); string(b) != "x1" {
		t.Errorf("usr/x = %q", b)
	}
}

// Attack 3: the new image turns a directory holding local paths (the
// host's ssh keys) into a symlink.
func TestAttackLocalDirReplaced(t *testing.T) {
	base := attackDir(t)
	f := newFixture(t)
	ta := tree{"etc": "dir", "etc/ssh": "dir", "etc/ssh/sshd_config": "file:Port 22\n", "var": "dir", "var/lib": "dir"}
	da, _, srcA := f.publishTree(t, ta)
	tb := tree{"etc": "dir", "etc/ssh": "link:/etc/ssh-elsewhere", "var": "dir", "var/lib": "dir"}
	db, _, _ := f.publishTree(t, tb)
	root := filepath.Join(base, "root")
	os.Mkdir(root, 0o755)
	s := f.syncer(t, root)
	src := f.source(t)
	syncOK(t, s, da, src)
	key := filepath.Join(root, "etc/ssh/ssh_host_ed25519_key")
	os.WriteFile(key, []byte("host key"), 0o600)

	res := s.Sync(context.Background(), db, src, SyncOptions{})
	if res.OK || !strings.Contains(res.Error, "etc/ssh") {
		t.Fatalf("an image replacing etc/ssh (which holds the host keys) was not refused: %+v", res)
	}
	t.Logf("sync error: %s", res.Error)
	// Another sync (whose clean-up dropped old backups) changes nothing.
	syncOK(t, s, da, src)
	if b, err := os.ReadFile(key); string(b) != "host key" {
		t.Fatalf("the host key is gone: %q %v", b, err)
	}
	if d := rsyncDiff(t, srcA, root, rsyncExcludes...); d != "" {
		t.Fatalf("root is not at A:\n%s", d)
	}
}

// Attack 6: the image hardlinks a binary to a path that is local on the
// host (tmp/x, where a user has a file of theirs).
func TestAttackHardlinkToLocal(t *testing.T) {
	base := attackDir(t)
	f := newFixture(t)
	ta := tree{"tmp": "dir|mode=1777", "usr": "dir", "usr/bin": "dir", "var": "dir", "var/lib": "dir"}
	da, _, _ := f.publishTree(t, ta)
	tb := tree{"tmp": "dir|mode=1777", "tmp/x": "file:image's", "usr": "dir", "usr/bin": "dir", "usr/bin/y": "hard:tmp/x", "var": "dir", "var/lib": "dir"}
	db, _, _ := f.publishTree(t, tb)
	root := filepath.Join(base, "root")
	os.Mkdir(root, 0o755)
	s := f.syncer(t, root)
	src := f.source(t)
	syncOK(t, s, da, src)
	// The host's own /tmp (a local path: the image's is not synced), and
	// a user's file in it.
	os.Mkdir(filepath.Join(root, "tmp"), 0o755)
	os.Chmod(filepath.Join(root, "tmp"), 0o1777)
	userFile := filepath.Join(root, "tmp/x")
	if err := os.WriteFile(userFile, []byte("#!/bin/sh\nid\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(userFile, 1000, 1000)

	res := s.Sync(context.Background(), db, src, SyncOptions{})
	if res.OK || !strings.Contains(res.Error, "tmp/x") {
		t.Fatalf("an image hardlinking to the local path tmp/x was not refused: %+v", res)
	}
	t.Logf("sync error: %s", res.Error)
	var s1, s2 unix.Stat_t
	if unix.Lstat(filepath.Join(root, "usr/bin/y"), &s2) == nil {
		unix.Lstat(userFile, &s1)
		t.Fatalf("usr/bin/y exists (inode %d; the user's tmp/x is %d)", s2.Ino, s1.Ino)
	}
}

// Attack 8: the user replaces a file the scan is about to read with a
// FIFO. The sync must end with an error naming it, not block.
func TestAttackFIFO(t *testing.T) {
	base := attackDir(t)
	f := newFixture(t)
	da, _, _ := f.publishTree(t, userTree())
	tb := userTree()
	tb["usr/x"] = "file:x2"
	db, _, _ := f.publishTree(t, tb)
	root := filepath.Join(base, "root")
	os.Mkdir(root, 0o755)
	s := f.syncer(t, root)
	src := f.source(t)
	syncOK(t, s, da, src)
	// Changed by its owner, so the next scan reads it again.
	os.WriteFile(filepath.Join(root, "pub/d/f"), []byte("edited"), 0o644)

	onRace(t, "hash", "pub/d/f", func() { attack(t, "fifo", filepath.Join(root, "pub/d/f")) })
	// The deadline only keeps a regression from hanging the suite.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res := s.Sync(ctx, db, src, SyncOptions{})
	if res.OK || !strings.Contains(res.Error, "pub/d/f") || !strings.Contains(res.Error, "FIFO") {
		t.Fatalf("a FIFO swapped in during the scan: want an error naming pub/d/f as a FIFO, got %+v", res)
	}
	t.Logf("sync error: %s", res.Error)
	if ctx.Err() != nil {
		t.Fatalf("the sync only ended at the test's deadline: %s", res.Error)
	}
}

// hugeFileSize is the attack-5 file: 4 GiB of zeros, which a tar of a
// few hundred KB carries.
const hugeFileSize = 4 << 30

// maxAgentRSS is the bound on the agent's peak resident memory while it
// syncs hugeFileSize: file contents stream, so memory does not grow with
// a file's size.
const maxAgentRSS = 300 << 20

// hugeFileSHA is the sha256 of hugeFileSize zero bytes.
const hugeFileSHA = "8479e43911dc45e89f934fe48d01297e16f51d17aa561d4d1c216b1ae0fcddca"

// hugeImage crafts, in f's store, a signed image holding usr/zeros, a
// file of hugeFileSize zeros: its chunk list (MaxChunk chunks of zeros),
// the one chunk, the manifest and index. Importing such a file (what an
// attacker's 135 KB .tar.zst makes the importer do) takes minutes of
// chunking; the agent's side is the same either way.
func hugeImage(t testing.TB, f *fixture) images.Digest {
	t.Helper()
	ctx := context.Background()
	b, err := backend.OpenLocal(f.store)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil)
	defer enc.Close()
	zero := images.Sum(make([]byte, store.MaxChunk))
	if err := b.Put(ctx, store.DigestHandle(store.KindObject, zero), enc.EncodeAll(make([]byte, store.MaxChunk), nil), true); err != nil {
		t.Fatal(err)
	}
	sha, err := images.ParseDigest(hugeFileSHA)
	if err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("%s %d\n", zero, store.MaxChunk)
	list := strings.Repeat(line, hugeFileSize/store.MaxChunk)
	if err := b.Put(ctx, store.DigestHandle(store.KindList, sha), enc.EncodeAll([]byte(list), nil), true); err != nil {
		t.Fatal(err)
	}
	dir := func(p string) images.Entry {
		return images.Entry{Path: p, Type: images.TypeDir, Mode: 0o755, Mtime: 1700000000}
	}
	m, err := images.NewManifest([]images.Entry{dir("."), dir("usr"), dir("var"), dir("var/lib"),
		{Path: "usr/zeros", Type: images.TypeFile, Mode: 0o644, Mtime: 1700000000, Size: hugeFileSize, SHA256: sha}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.st.PutManifest(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	f.sign(t, d, f.key)
	return d
}

// Attack 5: an image holding a 4 GiB file. A real agent process syncs it;
// its peak RSS (the kernel's maxrss of the process) stays under maxAgentRSS.
func TestAttackHugeFile(t *testing.T) {
	base := attackDir(t)
	bin := ingotBinary(t)
	f := newFixture(t)
	d := hugeImage(t, f)

	root := filepath.Join(base, "root")
	os.Mkdir(root, 0o755)
	c := agentConfig{Root: root, Stores: []string{f.store}, TrustedKeys: []string{f.writeTrusted(t)}}
	b, _ := yaml.Marshal(c)
	conf := filepath.Join(base, "agent.yaml")
	os.WriteFile(conf, b, 0o644)
	cmd := exec.Command(bin, "agent", "--config", conf, "--sync", d.String())
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sync of the %d GiB file: %v\n%s", hugeFileSize>>30, err, out)
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10 // KiB
	t.Logf("synced in %v; the agent's peak RSS was %d MiB (bound %d MiB)", time.Since(start).Round(time.Millisecond), rss>>20, maxAgentRSS>>20)
	if rss > maxAgentRSS {
		t.Errorf("the agent's peak RSS was %d MiB syncing a %d GiB file; the bound is %d MiB", rss>>20, hugeFileSize>>30, maxAgentRSS>>20)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(root, "usr/zeros"), &st); err != nil || st.Size != hugeFileSize {
		t.Fatalf("usr/zeros on the host: size %d, %v", st.Size, err)
	}
	t.Logf("usr/zeros takes %d KiB on disk (sparse)", st.Blocks/2)
}

// Attack: a managed file that anyone may write (the drift the sync is
// fixing: mode 0666 where the image says 0644) is rewritten by a local
// user between the planning scan and the commit's chmod. The commit never
// reads that file's content, so nothing may vouch for it afterwards: the
// next sync must find the new content and put the image's back.
func TestAttackWriteBeforeChmod(t *testing.T) {
	base := attackDir(t)
	f := newFixture(t)
	ta := tree{"etc": "dir", "etc/conf": "file:image content|mode=0666"}
	da, _, _ := f.publishTree(t, ta)
	tb := tree{"etc": "dir", "etc/conf": "file:image content|mode=0644"}
	db, _, _ := f.publishTree(t, tb)
	root := filepath.Join(base, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	s := f.syncer(t, root)
	src := f.source(t)
	syncOK(t, s, da, src)

	conf := filepath.Join(root, "etc/conf")
	onRace(t, "attrs", "etc/conf", func() {
		// Same size as the image's content: only the bytes differ.
		if err := os.WriteFile(conf, []byte("evil content!"), 0o666); err != nil {
			t.Error(err)
		}
	})
	syncOK(t, s, db, src)
	RaceHook = nil
	if b, _ := os.ReadFile(conf); string(b) != "evil content!" {
		t.Fatalf("the race did not happen: %q", b)
	}
	// Two more syncs to B, in the same agent and in a new one: the
	// content the commit never read must be found and replaced.
	syncOK(t, s, db, src)
	if b, _ := os.ReadFile(conf); string(b) != "image content" {
		t.Fatalf("after a second sync etc/conf holds %q: the stat cache vouched for content the commit never read", b)
	}
}
