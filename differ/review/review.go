package review

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/differ"
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/view"
	"github.com/ingotfleet/ingot/internal/debversion"
)

// DebInfo is what the review reads from a package file's control archive.
type DebInfo struct {
	Name         string   `json:"name"`
	Version      string   `json:"version"`
	Architecture string   `json:"architecture"`
	Depends      string   `json:"depends,omitempty"`
	Conffiles    []string `json:"conffiles,omitempty"`
	Scripts      []Script `json:"scripts,omitempty"` // maintainer scripts, in dpkg's order
}

// Script is a maintainer script and its text.
type Script struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

// maintainerScripts are the control files that run code, in the order
// dpkg runs them on install (then the removal ones).
var maintainerScripts = []string{"preinst", "config", "postinst", "triggers", "prerm", "postrm"}

// ReadDeb reads a package's control fields, conffiles and maintainer
// scripts with builder/deb, the project's one .deb reader.
func ReadDeb(ctx context.Context, file string) (*DebInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("reading package %s: %w", file, err)
	}
	defer f.Close()
	r, err := deb.NewReader(f, file)
	if err != nil {
		return nil, fmt.Errorf("reading package %s: %w", file, err)
	}
	c, err := r.Control()
	if err != nil {
		return nil, fmt.Errorf("reading package %s: %w", file, err)
	}
	info := &DebInfo{Name: c.Package(), Version: c.Get("Version"), Architecture: c.Get("Architecture"), Depends: c.Get("Depends"),
		Conffiles: c.Conffiles()}
	if _, err := debversion.Parse(info.Version); err != nil {
		return nil, fmt.Errorf("package %s: %w", file, err)
	}
	for _, s := range maintainerScripts {
		if cf, ok := c.Files[s]; ok {
			info.Scripts = append(info.Scripts, Script{Name: s, Text: string(cf.Data)})
		}
	}
	return info, nil
}

// Report is what installing one package into a base image changed.
type Report struct {
	Version int      `json:"version"`
	Base    string   `json:"base"`
	Package *DebInfo `json:"package"`
	// BaseVersion is the version of the package in the base image, "" if none.
	BaseVersion   string                  `json:"base_version,omitempty"`
	Changelog     []differ.ChangelogEntry `json:"changelog,omitempty"` // since BaseVersion (or the new version's entry)
	ChangelogNote string                  `json:"changelog_note,omitempty"`
	// Dependencies are the other packages the installation added or changed.
	Dependencies []differ.PackageChange `json:"dependencies"`
	// Files are the paths of the package's own file list that changed.
	Files []differ.Change `json:"files"`
	// Users and Groups added, removed or changed in etc/passwd and etc/group.
	Users  []AccountChange `json:"users"`
	Groups []AccountChange `json:"groups"`
	// Alternatives (etc/alternatives) and Services (systemd wants/aliases,
	// rc?.d links) the scripts set up.
	Alternatives []differ.Change `json:"alternatives"`
	Services     []differ.Change `json:"services"`
	// Outside are the changes outside every installed package's file list:
	// what maintainer scripts made (generated files, keys, configuration).
	Outside []differ.Change `json:"outside"`
	// Bookkeeping are the changes to dpkg's own database (var/lib/dpkg)
	// outside the file lists: status, file lists, md5sums, scripts.
	Bookkeeping []differ.Change `json:"bookkeeping"`
	// Deps are the changed paths of the dependencies, by package.
	Deps []differ.Group `json:"dependency_files"`
	Diff *differ.Report `json:"-"`
}

// AccountChange is a line of etc/passwd or etc/group added, removed or changed.
type AccountChange struct {
	Kind differ.DeltaKind `json:"kind"`
	Name string           `json:"name"`
	Old  string           `json:"old,omitempty"`
	New  string           `json:"new,omitempty"`
}

// Build turns the snapshots of a root before and after installing the
// package pkg into a review.
func Build(ctx context.Context, before, after view.View, pkg *DebInfo, opts differ.Options) (*Report, error) {
	d, err := differ.Diff(ctx, before, after, opts)
	if err != nil {
		return nil, err
	}
	rv := &Report{Version: differ.ReportVersion, Base: before.Name(), Package: pkg, Diff: d,
		Dependencies: []differ.PackageChange{}, Files: []differ.Change{}, Users: []AccountChange{}, Groups: []AccountChange{},
		Alternatives: []differ.Change{}, Services: []differ.Change{}, Outside: []differ.Change{}, Bookkeeping: []differ.Change{}, Deps: []differ.Group{}}
	for _, pc := range d.Packages {
		if pc.Name == pkg.Name {
			rv.BaseVersion = pc.Old
			if pc.Change == "upgraded" || pc.Change == "added" || pc.Change == "downgraded" {
				rv.Changelog, rv.ChangelogNote = pc.Changelog, pc.ChangelogNote
			}
			continue
		}
		rv.Dependencies = append(rv.Dependencies, pc)
	}
	for _, g := range d.Groups {
		switch g.Package {
		case pkg.Name:
			rv.Files = append(rv.Files, g.Changes...)
		case "":
			for _, c := range g.Changes {
				p := strings.TrimPrefix(c.Path, "/")
				switch {
				case strings.HasPrefix(p, "etc/alternatives/"):
					rv.Alternatives = append(rv.Alternatives, c)
				case strings.HasPrefix(p, "var/lib/dpkg/"):
					c.Content = nil
					rv.Bookkeeping = append(rv.Bookkeeping, c)
				case isServiceLink(p):
					rv.Services = append(rv.Services, c)
				default:
					rv.Outside = append(rv.Outside, c)
				}
			}
		default:
			rv.Deps = append(rv.Deps, g)
		}
	}
	for _, f := range []struct {
		path string
		out  *[]AccountChange
	}{{"etc/passwd", &rv.Users}, {"etc/group", &rv.Groups}} {
		old, err := readOne(ctx, before, f.path)
		if err != nil {
			return nil, err
		}
		cur, err := readOne(ctx, after, f.path)
		if err != nil {
			return nil, err
		}
		*f.out = accountChanges(old, cur)
	}
	return rv, nil
}

// isServiceLink: symlinks that enable services.
func isServiceLink(p string) bool {
	if strings.HasPrefix(p, "etc/systemd/system/") || strings.HasPrefix(p, "etc/systemd/user/") {
		return true
	}
	if strings.HasPrefix(p, "etc/rc") && len(p) > len("etc/rc0.d/") && strings.HasPrefix(p[len("etc/rc0"):], ".d/") {
		return true
	}
	return strings.HasPrefix(p, "etc/init.d/")
}

// readOne reads one file of a source, nil if it is not a regular file.
func readOne(ctx context.Context, s view.View, p string) ([]byte, error) {
	e := s.Manifest().Lookup(p)
	if e == nil {
		return nil, nil
	}
	if e = s.Manifest().Resolve(e); e == nil || e.Type != images.TypeFile {
		return nil, nil
	}
	var data []byte
	err := s.ReadFiles(ctx, []string{e.Path}, func(_ string, r io.Reader) error {
		var err error
		data, err = io.ReadAll(io.LimitReader(r, 64<<20))
		return err
	})
	return data, err
}

// accountChanges compares two passwd or group files by name.
func accountChanges(old, cur []byte) []AccountChange {
	parse := func(b []byte) map[string]string {
		m := map[string]string{}
		for _, l := range strings.Split(string(b), "\n") {
			if name, _, ok := strings.Cut(l, ":"); ok && name != "" && !strings.HasPrefix(name, "#") {
				m[name] = l
			}
		}
		return m
	}
	a, b := parse(old), parse(cur)
	out := []AccountChange{}
	var names []string
	for n := range a {
		names = append(names, n)
	}
	for n := range b {
		if _, ok := a[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		la, oka := a[n]
		lb, okb := b[n]
		switch {
		case !oka:
			out = append(out, AccountChange{Kind: differ.Added, Name: n, New: lb})
		case !okb:
			out = append(out, AccountChange{Kind: differ.Removed, Name: n, Old: la})
		case la != lb:
			out = append(out, AccountChange{Kind: differ.Changed, Name: n, Old: la, New: lb})
		}
	}
	return out
}

// Run installs the package file deb into a throwaway copy of the base
// root filesystem (a tar or a directory; needs root) and reports what the
// installation changed. log receives apt's output.
func Run(ctx context.Context, base, deb string, opts Options, log io.Writer) (*Report, error) {
	pkg, err := ReadDeb(ctx, deb)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "ingot-review")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }() // scratch copies of the base
	beforeDir, afterDir := filepath.Join(tmp, "before"), filepath.Join(tmp, "after")
	// Install first: a package that cannot be installed fails before the
	// second copy is made.
	if err := copyBase(ctx, base, afterDir); err != nil {
		return nil, err
	}
	if err := installDeb(ctx, afterDir, deb, opts.Recommends, log); err != nil {
		return nil, err
	}
	if err := copyBase(ctx, base, beforeDir); err != nil {
		return nil, err
	}
	before, err := view.OpenDir(ctx, beforeDir)
	if err != nil {
		return nil, err
	}
	defer before.Close()
	label := base
	if opts.BaseLabel != "" {
		label = opts.BaseLabel
	}
	after, err := view.OpenDir(ctx, afterDir)
	if err != nil {
		return nil, err
	}
	defer after.Close()
	return Build(ctx, named{before, label}, named{after, label + " + " + filepath.Base(deb)}, pkg, opts.Options)
}

// named is a view under the name the report gives it.
type named struct {
	view.View
	name string
}

func (n named) Name() string { return n.name }

// Options tune Run.
type Options struct {
	differ.Options
	Recommends bool   // install the package's Recommends too, as apt does by default
	BaseLabel  string // names the base in the report; default the base's path
}

// copyBase materialises the base image at dir: a tar is extracted with GNU
// tar keeping owners, modes, devices and xattrs; a directory is copied
// with cp -a.
func copyBase(ctx context.Context, base, dir string) error {
	fi, err := os.Stat(base)
	if err != nil {
		return fmt.Errorf("base image: %w", err)
	}
	var cmd *exec.Cmd
	if fi.IsDir() {
		cmd = exec.CommandContext(ctx, "cp", "-a", "--preserve=all", base+"/.", dir)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
	} else {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		cmd = exec.CommandContext(ctx, "tar", "--extract", "--file", base, "--directory", dir,
			"--same-owner", "--same-permissions", "--numeric-owner", "--xattrs", "--xattrs-include=*")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("copying the base image %s: %v: %s", base, err, tail(string(out), 10))
	}
	return nil
}
