package review

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/ingotfleet/ingot/builder/sandbox"
)

// This file installs a package into a throwaway root for Run. The
// installation itself, which runs the maintainer scripts, happens in the
// builder's sandbox in its untrusted mode (builder/sandbox: no network,
// pivot_root, fixed environment, a policy-rc.d that keeps daemons from
// starting, and since the package is not trusted yet a user namespace, an
// idmapped nodev root, reduced capabilities and a seccomp filter). Fetching
// the dependencies needs the network, which that sandbox never has, so it
// runs apt --download-only in a chroot of its own (unshare + chroot), with
// apt's lists and caches kept out of the image.

// sourceDateEpoch is the time maintainer scripts see.
const sourceDateEpoch = 1700000000

// sandboxEnv is the fixed environment of the download step.
var sandboxEnv = []string{
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	"LC_ALL=C.UTF-8",
	"TZ=UTC",
	"SOURCE_DATE_EPOCH=1700000000",
	"DEBIAN_FRONTEND=noninteractive",
	"DEBCONF_NONINTERACTIVE_SEEN=true",
	"HOME=/root",
}

// downloadRun runs script with sh in a chroot of root, in new mount, pid,
// uts and ipc namespaces but with the host's network, for apt's download
// step. /proc is mounted inside; umask is 022.
func downloadRun(ctx context.Context, root string, script string, out io.Writer) error {
	args := []string{"--mount", "--pid", "--fork", "--uts", "--ipc", "--propagation", "private"}
	args = append(args, "chroot", root, "/bin/sh", "-ec",
		"umask 022; hostname ingot-review 2>/dev/null || true; mount -t proc proc /proc; "+script)
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = sandboxEnv
	cmd.Stdout, cmd.Stderr = out, out
	return cmd.Run()
}

// reviewWork is the scratch directory inside the root during an install;
// it is removed afterwards.
const reviewWork = "tmp/ingot-review"

// aptOpts keep apt's lists, caches and logs in the scratch directory, out
// of the image, so that the review shows what the package changed and not
// what apt noted about the session.
var aptOpts = "-o Dir::State::Lists=/" + reviewWork + "/lists -o Dir::Cache::Archives=/" + reviewWork + "/archives" +
	" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o Dir::Log=/" + reviewWork + "/log" +
	" -o DPkg::Options::=--log=/dev/null -o APT::Sandbox::User=root -o Acquire::Languages=none"

// installDeb installs the package file deb into the root filesystem at
// root: dependencies come from the root's own apt sources (downloaded with
// network, in a first step that changes nothing in the image but the
// scratch directory), then apt installs offline, with no network at all.
// Missing dependencies are an error naming them. Recommended packages
// are installed only when recommends is set.
func installDeb(ctx context.Context, root, deb string, recommends bool, log io.Writer) error {
	installOpts := aptOpts
	if !recommends {
		installOpts += " --no-install-recommends"
	}
	work := filepath.Join(root, reviewWork)
	if err := os.MkdirAll(filepath.Join(work, "lists/partial"), 0o755); err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(work) }() // scratch; the snapshots leave it out
	for _, d := range []string{"archives/partial", "log"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(deb)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "package.deb"), data, 0o644); err != nil {
		return err
	}
	// Name resolution for the download step only.
	restore, err := tempFile(root, "etc/resolv.conf", "/etc/resolv.conf")
	if err != nil {
		return err
	}
	var dl bytes.Buffer
	err = downloadRun(ctx, root, "apt-get "+aptOpts+" -q update && apt-get "+installOpts+
		" -q -y --download-only install /"+reviewWork+"/package.deb", io.MultiWriter(&dl, log))
	if rerr := restore(); rerr != nil {
		// The image must not keep the host's resolver configuration.
		return fmt.Errorf("putting back the base's etc/resolv.conf: %w", rerr)
	}
	if err != nil {
		if missing := unmetDependencies(dl.String()); len(missing) > 0 {
			return fmt.Errorf("dependencies of %s not available from the base image's repositories: %s", filepath.Base(deb), strings.Join(missing, "; "))
		}
		return fmt.Errorf("resolving and downloading the dependencies of %s: %w\n%s", filepath.Base(deb), err, tail(dl.String(), 20))
	}
	// No --no-download: with it apt (2.6) fails on a package that is in
	// no repository ("Internal Error, Pathname to install is not
	// absolute"), which is what a package under review usually is. The
	// sandbox has no network, so nothing can be fetched anyway.
	var in bytes.Buffer
	w := io.MultiWriter(&in, log)
	err = sandbox.Run(ctx, root, []string{"/bin/sh", "-ec", "apt-get " + installOpts + " -q -y install /" + reviewWork + "/package.deb"},
		sandbox.Options{Stdout: w, Stderr: w, SourceDateEpoch: sourceDateEpoch, Untrusted: true})
	if err != nil {
		return fmt.Errorf("installing %s: %w\n%s", filepath.Base(deb), err, tail(in.String(), 20))
	}
	return nil
}

var unmetRe = regexp.MustCompile(`(?m)^\s*(\S+) : (?:Pre)?Depends: (.+?)\s*$`)

// unmetDependencies picks apt's "X : Depends: Y but it is not installable" lines.
func unmetDependencies(out string) []string {
	var deps []string
	for _, m := range unmetRe.FindAllStringSubmatch(out, -1) {
		deps = append(deps, m[1]+" needs "+m[2])
	}
	return slices.Compact(deps)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// tempFile puts a copy of the host file src at rel in root for a while;
// the returned function puts back what was there (or nothing).
func tempFile(root, rel, src string) (func() error, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, err
	}
	return tempContent(root, rel, data, 0o644)
}

func tempContent(root, rel string, data []byte, mode os.FileMode) (func() error, error) {
	name := filepath.Join(root, rel)
	saved := name + ".ingot-review-saved"
	fi, err := os.Lstat(name)
	switch {
	case err == nil:
		if !fi.Mode().IsRegular() && fi.Mode()&os.ModeSymlink == 0 {
			return nil, fmt.Errorf("%s is a %v", name, fi.Mode().Type())
		}
		if err := os.Rename(name, saved); err != nil {
			return nil, err
		}
	case errors.Is(err, os.ErrNotExist):
		saved = ""
	default:
		return nil, err
	}
	if err := os.WriteFile(name, data, mode); err != nil {
		return nil, err
	}
	return func() error {
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if saved != "" {
			return os.Rename(saved, name)
		}
		return nil
	}, nil
}
