package review_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/ingotfleet/ingot/builder/debrepo/debrepotest"
	"github.com/ingotfleet/ingot/builder/sandbox/sandboxtest"
	"github.com/ingotfleet/ingot/differ"
	"github.com/ingotfleet/ingot/differ/differtest"
	"github.com/ingotfleet/ingot/differ/review"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// TestReviewHostilePackage reviews a package whose postinst is hostile:
// it makes a node of the host's disk and tries to open and mount it (to
// read /etc/shadow and a canary file the test planted on that disk),
// opens the disk's root by handle, mounts a tmpfs, calls kexec and the
// module calls and ptraces the sandbox's init and the test process. The
// review must complete, every attempt must be reported blocked, and the
// canary must be untouched. (Before the review sandbox had a user
// namespace and a seccomp filter, the script mounted the host's disk,
// read /etc/shadow and wrote to the canary.)
func TestReviewHostilePackage(t *testing.T) {
	t.Parallel()
	testenv.RequireTool(t, "unshare", "util-linux")
	testenv.RequireTool(t, "dpkg-deb", "dpkg")
	base := filepath.Join(differtest.RealImages(t), "minbase.tar")
	hostile := sandboxtest.HostileBinary(t)
	canary := sandboxtest.PlantCanary(t)
	bin, err := os.ReadFile(hostile)
	if err != nil {
		t.Fatal(err)
	}
	const path = "usr/lib/ingot-hostile/hostile"
	deb := debrepotest.BuildDeb(t, t.TempDir(), debrepotest.Deb{
		Package:      "ingot-hostile",
		Version:      "1.0",
		Architecture: runtime.GOARCH,
		Files:        map[string]string{path: string(bin)},
		Scripts: map[string]string{"postinst": fmt.Sprintf("#!/bin/sh\nchmod 0755 /%s\n/%s -disk %s -canary %s -pid %d\n",
			path, path, canary.Disk, canary.RelPath, os.Getpid())},
	})
	var log bytes.Buffer
	rv, err := review.Run(context.Background(), base, deb, review.Options{Options: differ.DefaultOptions()}, &log)
	t.Logf("apt and the postinst:\n%s", log.String())
	if err != nil {
		t.Fatalf("Review: %v", err)
	}
	blocked, succeeded := sandboxtest.HostileVerdicts(log.String())
	for _, s := range succeeded {
		t.Errorf("the postinst escaped the review sandbox: %s", s)
	}
	for _, a := range append(slices.Clone(sandboxtest.HostileAttempts), "ptrace-outside") {
		if !slices.Contains(blocked, a) {
			t.Errorf("attempt %s was not reported blocked", a)
		}
	}
	if got, err := os.ReadFile(canary.Path); err != nil || string(got) != canary.Secret {
		t.Errorf("the canary on the host's disk changed: %q, %v", got, err)
	}
	var files []string
	for _, c := range rv.Files {
		files = append(files, c.Path)
	}
	if !slices.Contains(files, "/"+path) {
		t.Errorf("the review does not list the package's file /%s: %v", path, files)
	}
}
