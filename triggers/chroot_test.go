package triggers

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// copyWithLibs copies the host's program at abs into root, with the
// shared libraries ldd names, at the same paths.
func copyWithLibs(t *testing.T, root, abs string) {
	t.Helper()
	files := []string{abs}
	out, err := exec.Command("ldd", abs).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", abs, err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(f, "/") {
				files = append(files, f)
			}
		}
	}
	for _, f := range files {
		real, err := filepath.EvalSymlinks(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(real)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, f)
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// With Chroot, a trigger runs inside the root: it sees INGOT_ROOT "/",
// its changed-path list at a path inside the root, and what it writes
// lands in the root, not on the host.
func TestRunChroot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("chroot needs root: run the tests as root")
	}
	root := t.TempDir()
	copyWithLibs(t, root, "/bin/sh")
	os.MkdirAll(filepath.Join(root, "state"), 0o700)
	os.MkdirAll(filepath.Join(root, "tmp"), 0o1777)
	r := Rule{Name: "inside", Paths: []string{"etc/**"}, Command: []string{"sh", "-c",
		`echo "root=$INGOT_ROOT" > /tmp/out; while read l; do echo "$l"; done < "$INGOT_CHANGED_FILE" >> /tmp/out; test ! -e ` + root}}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	m := []Match{{Rule: r, Paths: []string{"etc/hostname"}}}
	res, err := Run(context.Background(), m, Env{Root: root, Dir: filepath.Join(root, "state"), Chroot: true})
	if err != nil {
		t.Fatalf("%v %+v", err, res)
	}
	b, err := os.ReadFile(filepath.Join(root, "tmp/out"))
	if err != nil || string(b) != "root=/\netc/hostname\n" {
		t.Fatalf("inside the chroot the trigger wrote %q (%v)", b, err)
	}
	// The changed-path list must be beneath the root.
	if _, err := Run(context.Background(), m, Env{Root: root, Dir: t.TempDir(), Chroot: true}); err == nil {
		t.Fatal("a list outside the root was accepted")
	}
}
