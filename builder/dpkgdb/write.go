package dpkgdb

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ingotfleet/ingot/builder/deb"
)

// Dir is dpkg's administrative directory, relative to the root.
const Dir = "var/lib/dpkg"

// StatusUnpacked is the status of a package whose files are in place and
// whose postinst has not run yet.
const StatusUnpacked = "install ok unpacked"

// NewConffile is the hash dpkg records for a conffile unpacked but not yet
// configured (it is on disk as <path>.dpkg-new).
const NewConffile = "newconffile"

// Package is what the database records about one unpacked package.
type Package struct {
	Control *deb.Control
	// Paths are the package's paths as dpkg lists them: "/." for the
	// root, then every other path of data.tar with a leading "/" and no
	// trailing one, in archive order.
	Paths []string
	// MD5sums is info/<pkg>.md5sums: the package's own file when it ships
	// one, else what the unpacker computed ("<md5>  <path>\n" for every
	// regular file that is not a conffile, in archive order).
	MD5sums []byte
	// Status defaults to StatusUnpacked.
	Status string
}

// Name is the package name.
func (p *Package) Name() string { return p.Control.Package() }

// InfoName is the base name of the package's info files: "pkg", or
// "pkg:arch" for Multi-Arch: same packages.
func (p *Package) InfoName() string {
	return InfoName(p.Name(), p.Control.Get("Architecture"), p.Control.Get("Multi-Arch"))
}

// statusFieldOrder is the order dpkg writes the status fields in; other
// fields follow in the order of the control file.
var statusFieldOrder = []string{
	"Package", "Essential", "Protected", "Status", "Priority", "Section", "Installed-Size",
	"Origin", "Maintainer", "Bugs", "Architecture", "Multi-Arch", "Source", "Version",
	"Config-Version", "Replaces", "Provides", "Depends", "Pre-Depends", "Recommends",
	"Suggests", "Breaks", "Conflicts", "Enhances", "Conffiles", "Description", "Triggers-Pending",
	"Triggers-Awaited",
}

// controlFilesNotKept are members of control.tar that dpkg does not copy
// to info/.
var controlFilesNotKept = map[string]bool{"control": true}

// statusParagraph is the status entry of p.
func (p *Package) statusParagraph() *deb.Paragraph {
	src := p.Control.Paragraph
	out := &deb.Paragraph{}
	status := p.Status
	if status == "" {
		status = StatusUnpacked
	}
	conffiles := ""
	for _, c := range p.Control.Conffiles() {
		conffiles += "\n " + c + " " + NewConffile
	}
	seen := map[string]bool{}
	for _, n := range statusFieldOrder {
		k := strings.ToLower(n)
		seen[k] = true
		switch {
		case k == "status":
			out.Set("Status", status)
		case k == "conffiles":
			if conffiles != "" {
				out.Set("Conffiles", conffiles)
			}
		case src.Has(n):
			out.Set(n, src.Get(n))
		}
	}
	for _, n := range src.Names() {
		if !seen[strings.ToLower(n)] {
			out.Set(n, src.Get(n))
		}
	}
	return out
}

// Write creates the dpkg database of root for pkgs (in the order given,
// which becomes the order of the status file) and the native architecture
// arch. It refuses to overwrite an existing status file.
func Write(ctx context.Context, root string, arch string, pkgs []*Package) error {
	admin := filepath.Join(root, Dir)
	for _, d := range []string{"", "info", "triggers", "updates", "alternatives", "parts"} {
		if err := os.MkdirAll(filepath.Join(admin, d), 0o755); err != nil {
			return fmt.Errorf("dpkg database: %w", err)
		}
		// Not subject to the umask: the same database on every host.
		if err := os.Chmod(filepath.Join(admin, d), 0o755); err != nil {
			return fmt.Errorf("dpkg database: %w", err)
		}
	}
	statusPath := filepath.Join(admin, "status")
	if _, err := os.Lstat(statusPath); err == nil {
		return fmt.Errorf("dpkg database: %s exists already", statusPath)
	}
	var status bytes.Buffer
	fileTriggers := map[string][]string{} // path → "pkg[/noawait]"
	explicit := map[string][]string{}     // trigger name → "pkg[/noawait]"
	seen := map[string]bool{}
	for _, p := range pkgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		info := p.InfoName()
		if seen[info] {
			return fmt.Errorf("dpkg database: package %s given twice", info)
		}
		seen[info] = true
		_, _ = p.statusParagraph().WriteTo(&status) // a bytes.Buffer does not fail
		status.WriteByte('\n')
		if err := writeInfo(filepath.Join(admin, "info"), info, p); err != nil {
			return err
		}
		if t, ok := p.Control.Files["triggers"]; ok {
			if err := interests(p.Name(), t.Data, fileTriggers, explicit); err != nil {
				return fmt.Errorf("dpkg database: %s: triggers: %w", info, err)
			}
		}
	}
	if err := writeFile(statusPath, status.Bytes()); err != nil {
		return fmt.Errorf("dpkg database: %w", err)
	}
	files := adminFiles(arch, fileTriggers, explicit)
	for _, name := range sortedKeys(files) {
		if err := writeFile(filepath.Join(admin, name), files[name]); err != nil {
			return fmt.Errorf("dpkg database: %w", err)
		}
	}
	return nil
}

// writeInfo writes package p's files in the info directory: its file
// list, the control files dpkg keeps, and its md5sums.
func writeInfo(infoDir, info string, p *Package) error {
	write := func(what string, data []byte, mode os.FileMode) error {
		f := filepath.Join(infoDir, info+"."+what)
		if err := os.WriteFile(f, data, mode); err != nil {
			return fmt.Errorf("dpkg database: %w", err)
		}
		return os.Chmod(f, mode) // not subject to the umask
	}
	list := strings.Join(p.Paths, "\n")
	if list != "" {
		list += "\n"
	}
	if err := write("list", []byte(list), 0o644); err != nil {
		return err
	}
	names := make([]string, 0, len(p.Control.Files))
	for n := range p.Control.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if controlFilesNotKept[n] || n == "md5sums" {
			continue
		}
		f := p.Control.Files[n]
		mode := os.FileMode(0o644)
		if f.Mode&0o111 != 0 {
			mode = 0o755
		}
		if err := write(n, f.Data, mode); err != nil {
			return err
		}
	}
	if len(p.MD5sums) > 0 {
		return write("md5sums", p.MD5sums, 0o644)
	}
	return nil
}

// adminFiles are the database's other files, by path below the admin
// directory: format, architecture, and the trigger interests (fileTriggers
// by path, explicit by trigger name).
func adminFiles(arch string, fileTriggers, explicit map[string][]string) map[string][]byte {
	files := map[string][]byte{
		"info/format":       []byte("1\n"),
		"triggers/Unincorp": nil,
		"arch":              []byte(arch + "\n"),
	}
	var ft bytes.Buffer
	for _, path := range sortedKeys(fileTriggers) {
		for _, who := range fileTriggers[path] {
			fmt.Fprintf(&ft, "%s %s\n", path, who)
		}
	}
	if ft.Len() > 0 {
		files["triggers/File"] = ft.Bytes()
	}
	for _, name := range sortedKeys(explicit) {
		files["triggers/"+name] = []byte(strings.Join(explicit[name], "\n") + "\n")
	}
	return files
}

// interests records the "interest" directives of a triggers file.
func interests(pkg string, data []byte, files, explicit map[string][]string) error {
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return fmt.Errorf("line %d: %q", i+1, line)
		}
		who := pkg
		switch f[0] {
		case "interest", "interest-await":
		case "interest-noawait":
			who += "/noawait"
		case "activate", "activate-await", "activate-noawait":
			continue
		default:
			return fmt.Errorf("line %d: unknown directive %q", i+1, f[0])
		}
		if strings.HasPrefix(f[1], "/") {
			files[f[1]] = append(files[f[1]], who)
		} else {
			explicit[f[1]] = append(explicit[f[1]], who)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// writeFile writes a 0644 file whatever the umask.
func writeFile(p string, data []byte) error {
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return err
	}
	return os.Chmod(p, 0o644)
}
