package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/cli"
)

// image import of a directory, --delta-from, image delta --json and
// image sign, checked in the store they wrote.
func TestImageDeltaCommands(t *testing.T) {
	dir := t.TempDir()
	st := filepath.Join(dir, "store")
	env := map[string]string{"INGOT_STORE": st}
	run := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := runApp(t, env, args...)
		if code != want {
			t.Fatalf("ingot %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, out, errOut)
		}
		return out
	}
	r := rand.New(rand.NewPCG(5, 5))
	lib := make([]byte, 600<<10)
	for i := range lib {
		lib[i] = byte(r.Uint32())
	}
	libB := bytes.Clone(lib)
	copy(libB[300<<10:], "security fix")
	write := func(root string, files map[string][]byte) {
		for p, c := range files {
			os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
			if err := os.WriteFile(filepath.Join(root, p), c, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(filepath.Join(dir, "a"), map[string][]byte{"usr/lib/libx.so": lib, "etc/motd": []byte("A\n")})
	write(filepath.Join(dir, "b"), map[string][]byte{"usr/lib/libx.so": libB, "etc/motd": []byte("B\n")})
	a := strings.TrimSpace(run(cli.ExitOK, "image", "import", filepath.Join(dir, "a"), "--name", "x:a"))
	b := strings.TrimSpace(run(cli.ExitOK, "image", "import", filepath.Join(dir, "b"), "--name", "x:b", "--delta-from", "x:a"))

	s, err := store.Open(st)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	from, to := images.Sum(lib), images.Sum(libB)
	if ok, err := s.HasDelta(ctx, from, to); !ok || err != nil {
		t.Fatalf("import --delta-from stored no delta for the library: %v %v", ok, err)
	}
	var stats store.DeltaStats
	if err := json.Unmarshal([]byte(run(cli.ExitOK, "image", "delta", a, b, "--json")), &stats); err != nil {
		t.Fatal(err)
	}
	// Both changed files get a delta: in a layout v2 store a host lacking
	// etc/motd would fetch the whole frame holding it.
	if stats.Files != 2 || stats.Deltas != 2 || stats.DeltaBytes >= stats.ChunkBytes {
		t.Errorf("image delta --json = %+v; want 2 files, 2 deltas smaller than the chunks", stats)
	}
	run(cli.ExitOK, "key", "gen", filepath.Join(dir, "k"))
	run(cli.ExitOK, "image", "sign", "x:b", "--key", filepath.Join(dir, "k.key"))
	run(cli.ExitOK, "key", "gen", filepath.Join(dir, "k2"))
	run(cli.ExitOK, "image", "sign", "x:b", "--key", filepath.Join(dir, "k2.key"))
	d, _ := images.ParseDigest(b)
	sig, err := s.Signature(ctx, d)
	if err != nil || strings.Count(string(sig), "ingot-signature-v2 ") != 2 || !strings.Contains(string(sig), " x:b ") {
		t.Errorf("signature file after two signers: %q, %v", sig, err)
	}
	run(cli.ExitError, "image", "delta", "x:a", "x:nope")
	run(cli.ExitUsage, "image", "delta", "x:a")
}
