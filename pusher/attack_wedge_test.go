package pusher_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/agentclient"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/localfleet"
	"github.com/ingotfleet/ingot/pusher"
)

// wedgeTar is a crafted image: the wedge test's A with usr/bin/tool
// changed, usr/bin/zz with zzXattrs, and what extra adds.
func wedgeTar(t testing.TB, zzXattrs map[string]string, extra func(tw *tar.Writer)) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1700000000, 0)
	for _, h := range []*tar.Header{
		{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt},
		{Name: "usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt},
		{Name: "var/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt},
		{Name: "var/lib/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt},
	} {
		tw.WriteHeader(h)
	}
	put := func(h *tar.Header, body string) {
		h.Typeflag, h.Size, h.ModTime = tar.TypeReg, int64(len(body)), mt
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	put(&tar.Header{Name: "usr/bin/tool", Mode: 0o755}, "v2")
	extra(tw)
	put(&tar.Header{Name: "usr/bin/zz", Mode: 0o644, PAXRecords: zzXattrs}, "same")
	tw.Close()
	return buf.Bytes()
}

// Attack 7: a commit that fails for good half-way. The host ends at the
// old image, reporting the error; an agent killed in the middle of such a
// commit starts, undoes it, and serves.
func TestAttackWedge(t *testing.T) {
	base := pusher.AttackDir(t)
	bin := pusher.IngotCrashBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := pusher.NewFixture(t)
	ta := pusher.TestTree{"usr": "dir", "usr/bin": "dir", "usr/bin/tool": "file:v1|mode=0755", "usr/bin/zz": "file:same", "var": "dir", "var/lib": "dir"}
	da, _, srcA := f.PublishTree(t, ta)
	importTar := func(b []byte) images.Digest {
		d, err := f.Store().Import(ctx, bytes.NewReader(b), store.ImportOptions{})
		if err != nil {
			t.Fatalf("importing the crafted image: %v", err)
		}
		f.Sign(t, d, f.Key())
		return d
	}
	// A file whose name (5,000 bytes) a tar holds but no Linux filesystem
	// takes used to wedge the commit half-way; the image is now refused at
	// import, as it would be by the manifest parser.
	long := wedgeTar(t, nil, func(tw *tar.Writer) {
		tw.WriteHeader(&tar.Header{Name: "usr/bin/" + strings.Repeat("n", 5000), Typeflag: tar.TypeReg, Mode: 0o644, Size: 1, ModTime: time.Unix(1700000000, 0)})
		tw.Write([]byte("x"))
	})
	if d, err := f.Store().Import(ctx, bytes.NewReader(long), store.ImportOptions{}); !errors.Is(err, images.ErrTooLong) {
		t.Fatalf("importing an image with a 5,000-byte name: %s, %v; want images.ErrTooLong", d, err)
	}
	// W2: an attribute the kernel refuses (a malformed file capability)
	// on a file whose content stays: the commit's attrs step fails, after
	// usr/bin/tool was replaced. Validate cannot know what each kernel
	// takes, so this failure does not go away; the undo must handle it.
	w2 := importTar(wedgeTar(t, map[string]string{"SCHILY.xattr.security.capability": "\x01\x02"}, func(*tar.Writer) {}))
	fleet, err := localfleet.Start(ctx, localfleet.Options{N: 1, Dir: base, Binary: bin, Stores: []string{f.StoreDir()},
		TrustedKeys: []string{f.WriteTrusted(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Stop()
	a := fleet.Agents[0]
	if r, err := fleet.Push(ctx, agentclient.PushOptions{Image: da}); err != nil || r[0].Result == nil || !r[0].Result.OK {
		t.Fatalf("push A: %v %+v", err, r)
	}
	atA := func(when string) {
		t.Helper()
		if d := pusher.RsyncDiff(t, srcA, a.Root, pusher.RsyncExcludes...); d != "" {
			t.Fatalf("%s: root is not at A:\n%s", when, d)
		}
		st, err := fleet.Client.Status(ctx, fleet.Hosts[0].Addr)
		if err != nil {
			t.Fatalf("%s: the agent does not serve: %v", when, err)
		}
		if st.Image != da.String() {
			t.Fatalf("%s: the agent reports image %s, want A %s", when, st.Image, da)
		}
	}
	for _, w := range []images.Digest{w2} {
		r, err := fleet.Push(ctx, agentclient.PushOptions{Image: w})
		if len(r) != 1 || r[0].Result == nil || r[0].Result.OK {
			t.Fatalf("push of %s: want a failed sync, got %+v %v", w, r, err)
		}
		t.Logf("push %s: %.300s", w, strings.ReplaceAll(r[0].Result.Error, strings.Repeat("n", 100), "n…"))
		atA("after the failed push")
	}

	// Killed in the middle of the commit that fails: the journal is on
	// disk; the agent restarts, undoes and serves.
	fleet.Kill(a)
	steps := filepath.Join(base, "steps")
	run := func(env ...string) (string, error) {
		cmd := exec.Command(bin, "agent", "--config", a.ConfigFile, "--sync", w2.String())
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("INGOT_AGENT_STEPS=" + steps); err == nil {
		t.Fatalf("sync to W2 succeeded:\n%s", out)
	}
	b, _ := os.ReadFile(steps)
	var n int
	fmt.Sscan(string(b), &n)
	// The failed sync's last step removes the journal of the undone
	// commit; the one before is the commit's put of usr/bin/tool. Killed
	// there, the host is between A and W2, the journal on disk.
	out, err := run(fmt.Sprintf("INGOT_AGENT_CRASH_AT=%d", n-1))
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the agent was not killed at step %d: %v\n%s", n-1, err, out)
	}
	if _, err := os.Stat(filepath.Join(a.Root, "var/lib/ingot-agent/journal.json")); err != nil {
		t.Fatalf("no journal after the kill at step %d of %d: %v", n-1, n, err)
	}
	if b, _ := os.ReadFile(filepath.Join(a.Root, "usr/bin/tool")); string(b) != "v2" {
		t.Fatalf("killed before the commit replaced usr/bin/tool (%q)", b)
	}
	if err := fleet.Restart(ctx, 0); err != nil {
		t.Fatalf("the agent did not start again: %v", err)
	}
	atA("after the restart")
}
