package rpm2deb

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/rpm2deb/provides"
	"github.com/ingotfleet/ingot/builder/sandbox"
	"github.com/ingotfleet/ingot/images/compression"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// imageRoot gives a throwaway ingot image to install into: the reference
// Debian root imported into an image store and exported again by ingot
// (images/store), unpacked into a directory. runInImage runs a command
// inside it in the builder's sandbox (builder/sandbox: namespaces,
// pivot_root, no network, fixed environment), as an image build runs
// maintainer scripts.
func imageRoot(t *testing.T) string {
	t.Helper()
	testenv.RequireTool(t, "tar", "tar")
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	f, err := os.Open(testenv.DebianRootTar(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	d, err := st.Import(ctx, f, store.ImportOptions{Name: f.Name()})
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(st.Export(ctx, d, pw, compression.None)) }()
	cmd := exec.Command("tar", "--extract", "--directory", dst, "--preserve-permissions", "--same-owner",
		"--numeric-owner", "--xattrs", "--xattrs-include=*")
	cmd.Stdin = pr
	if out, err := cmd.CombinedOutput(); err != nil {
		pr.CloseWithError(err)
		t.Fatalf("unpacking image %s: %v\n%s", d, err, out)
	}
	return dst
}

func runInImage(t *testing.T, root string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	err := sandbox.Run(context.Background(), root, args, sandbox.Options{Stdout: &out, Stderr: &out, SourceDateEpoch: 1700000000})
	if err != nil {
		t.Fatalf("in the image: %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// TestInstall installs the converted packages with dpkg -i into a copy of
// a real Debian root, and checks that their scripts ran with RPM's $1
// (install, upgrade, removal), that conffiles are registered, and that
// the setuid bit and the file capability are on the installed files.
func TestInstall(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "getcap", "libcap2-bin")
	root := imageRoot(t)
	resolver := provides.NewRootResolver(root)
	ctx := context.Background()
	var debs []string
	for _, spec := range []string{"hello", "hello-doc"} {
		rep, err := Convert(ctx, buildRPM(t, spec, ""), Options{OutDir: filepath.Join(root, "tmp"), Resolver: resolver})
		if err != nil {
			t.Fatal(err)
		}
		debs = append(debs, "/tmp/"+filepath.Base(rep.Output))
	}
	capdeb := debFromMirror(t, "libcap2-bin")
	run(t, "cp", capdeb, filepath.Join(root, "tmp", "libcap2-bin.deb"))

	logPath := filepath.Join(root, "var/lib/hello-test/log")
	wantLog := func(want ...string) {
		t.Helper()
		b, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != strings.Join(want, "\n") {
			t.Errorf("scriptlet log:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
		}
	}

	runInImage(t, root, append([]string{"dpkg", "-i", "/tmp/libcap2-bin.deb"}, debs...)...)
	wantLog("pre 1", "post 1")
	// hello-doc's %post is Perl: run by its interpreter, with $1 too.
	if b, err := os.ReadFile(filepath.Join(root, "var/lib/hello-test/doc-post")); err != nil || string(b) != "perl post 1\n" {
		t.Errorf("hello-doc's Perl %%post: %q %v", b, err)
	}
	st := runInImage(t, root, "dpkg-query", "-W", "-f", "${Status} ${Version}\n", "hello-tool", "hello-doc")
	if st != "install ok installed 2.0~rc1-1\ninstall ok installed 3:1.4.2-3.el9.2\n" {
		t.Errorf("dpkg-query: %q", st)
	}
	conf := runInImage(t, root, "dpkg-query", "-W", "-f", "${Conffiles}\n", "hello-tool")
	for _, c := range []string{"/etc/hello/hello.conf", "/etc/hello/defaults.conf"} {
		if !strings.Contains(conf, c) {
			t.Errorf("conffile %s not registered: %q", c, conf)
		}
	}
	// md5sums and conffile hashes match what was installed.
	if out := runInImage(t, root, "dpkg", "--verify", "hello-tool", "hello-doc"); out != "" {
		t.Errorf("dpkg --verify:\n%s", out)
	}
	if owner := runInImage(t, root, "dpkg", "-S", "/usr/sbin/hello-ping"); !strings.HasPrefix(owner, "hello-tool: ") {
		t.Errorf("dpkg -S: %q", owner)
	}
	fi, err := os.Stat(filepath.Join(root, "usr/bin/hello-suid"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("hello-suid mode %v, want setuid 0755", fi.Mode())
	}
	if caps := run(t, "getcap", filepath.Join(root, "usr/sbin/hello-ping")); !strings.Contains(caps, "cap_net_raw=ep") {
		t.Errorf("getcap: %q, want cap_net_raw=ep", caps)
	}
	// Owned by the system user the %pre scriptlet created: dpkg maps
	// the tar's owner names to the image's ids when it unpacks.
	ids := strings.Fields(runInImage(t, root, "sh", "-c", "id -u hellod; id -g hellod; stat -c '%u %g %a' /var/lib/hellod /var/lib/hellod/state"))
	if len(ids) != 8 || ids[0] == "0" || ids[2] != ids[0] || ids[3] != ids[1] || ids[4] != "750" || ids[5] != ids[0] || ids[6] != ids[1] || ids[7] != "640" {
		t.Errorf("hellod's files: uid, gid, then uid gid mode of each: %v", ids)
	}
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	// Reinstalling is an upgrade for dpkg: old prerm, new preinst, old
	// postrm, new postinst — RPM's %preun 1, %pre 2, %postun 1, %post 2.
	runInImage(t, root, "dpkg", "-i", debs[0])
	wantLog("preun 1", "pre 2", "postun 1", "post 2")
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	runInImage(t, root, "dpkg", "-r", "hello-doc", "hello-tool")
	wantLog("preun 0", "postun 0")
}
