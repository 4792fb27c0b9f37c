package debtest

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// HostBasePrograms are the host programs HostBase packages: enough for
// dpkg to configure packages and for maintainer scripts to run.
var HostBasePrograms = []string{
	"sh", "bash", "dash", "dpkg", "dpkg-deb", "dpkg-query", "dpkg-divert", "dpkg-trigger", "update-alternatives",
	"ldconfig", "start-stop-daemon", "rm", "tar", "diff", "cat", "echo", "mkdir", "ln", "ls", "test",
	"chmod", "chown", "mv", "cp", "touch", "true", "false", "grep", "sed", "head", "tr", "id", "env",
}

// HostBase builds "hostbase", an Essential package made of the host's own
// programs (HostBasePrograms) and their shared libraries, laid out as a
// merged-/usr root (bin, sbin, lib, lib64 are symlinks into usr). With it,
// tests can build working images from a local repository of made-up
// packages, without the Debian mirror. It needs dpkg-deb and ldd.
func HostBase(t testing.TB, dir string) string {
	t.Helper()
	files := map[string]File{
		"bin":                              {Mode: os.ModeSymlink, Content: "usr/bin"},
		"sbin":                             {Mode: os.ModeSymlink, Content: "usr/sbin"},
		"lib":                              {Mode: os.ModeSymlink, Content: "usr/lib"},
		"lib64":                            {Mode: os.ModeSymlink, Content: "usr/lib64"},
		"tmp":                              {Mode: os.ModeDir | os.ModeSticky | 0o777},
		"root":                             {Mode: os.ModeDir | 0o700},
		"etc":                              {Mode: os.ModeDir},
		"var/lib/dpkg/info":                {Mode: os.ModeDir},
		"var/log":                          {Mode: os.ModeDir},
		"usr/share/doc/hostbase/copyright": {Content: "made from the build host's programs, for tests\n"},
	}
	add := func(hostPath, imagePath string) {
		real, err := filepath.EvalSymlinks(hostPath)
		if err != nil {
			t.Fatalf("HostBase: %v", err)
		}
		data, err := os.ReadFile(real)
		if err != nil {
			t.Fatalf("HostBase: %v", err)
		}
		fi, err := os.Stat(real)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range []string{"bin/", "sbin/", "lib/", "lib64/"} {
			if strings.HasPrefix(imagePath, l) {
				imagePath = "usr/" + imagePath
			}
		}
		files[imagePath] = File{Mode: fi.Mode().Perm(), Content: string(data)}
	}
	for _, prog := range HostBasePrograms {
		p, err := exec.LookPath(prog)
		if err != nil {
			for _, d := range []string{"/usr/sbin", "/sbin"} {
				if _, serr := os.Stat(filepath.Join(d, prog)); serr == nil {
					p, err = filepath.Join(d, prog), nil
					break
				}
			}
		}
		if err != nil {
			t.Fatalf("HostBase: %s is not on the host", prog)
		}
		dest := "usr/bin/" + prog
		if strings.Contains(p, "sbin/") {
			dest = "usr/sbin/" + prog
		}
		add(p, dest)
		out, err := exec.Command("ldd", p).Output()
		if err != nil {
			continue // static
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			for _, f := range strings.Fields(sc.Text()) {
				if strings.HasPrefix(f, "/") {
					add(f, strings.TrimPrefix(filepath.Clean(f), "/"))
				}
			}
		}
	}
	return Build(t, dir, Package{
		Name: "hostbase", Version: "1.0", Architecture: "amd64",
		Fields: map[string]string{"Essential": "yes", "Priority": "required", "Provides": "dpkg"},
		Files:  files, Compression: "zstd",
	})
}
