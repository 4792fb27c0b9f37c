package buildcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ingotfleet/ingot/builder"
	"github.com/ingotfleet/ingot/builder/debrepo"
	"github.com/ingotfleet/ingot/builder/resolve"
	"github.com/ingotfleet/ingot/builder/spec"
	"github.com/ingotfleet/ingot/internal/atomicfile"
	"github.com/ingotfleet/ingot/internal/cli"
)

func init() { cli.Register(newLockCommand) }

// LockOptions are the flags of `ingot lock`.
type LockOptions struct {
	Output  string
	JSON    bool
	AptRoot string
	Check   bool
}

// AddFlags registers the options on fs.
func (o *LockOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.Output, "output", "o", "", "lock file to write (default: SPEC with .lock instead of .yaml; - for stdout)")
	f.BoolVar(&o.JSON, "json", false, "print a JSON summary of the lock on stdout")
	f.StringVar(&o.AptRoot, "apt-root", "/", "root whose etc/apt sources and keyrings are used when the spec names no repository")
	f.BoolVar(&o.Check, "check", false, "resolve again and compare with the existing lock instead of writing it: exit 1 and list the changes if packages differ")
}

func newLockCommand(a *cli.App) *cobra.Command {
	var o LockOptions
	cmd := &cobra.Command{
		Use:   "lock SPEC",
		Short: "Resolve a spec's packages against its signed repositories and write the lock file",
		Long: `Lock fetches the InRelease file of every suite of the spec's repositories
(or of the host's apt sources when the spec names none), verifies its
OpenPGP signature against the keyring, reads the Packages indices checked
against the Release hashes, resolves the variant's base set and the spec's
packages with their dependencies, and writes the lock: every package with
exact version, architecture, repository path, size and sha256.

With --check the lock file is left alone: the new resolution is compared
with it, changed packages are listed (+ added, - removed, ~ new version or
new bytes) and the exit code is 1 when any package changed, 0 otherwise
(newer InRelease files alone do not count).`,
		Args: cli.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLock(cmd.Context(), a, o, args[0])
		},
	}
	o.AddFlags(cmd)
	return cmd
}

// defaultLockPath is SPEC with its .yaml/.yml suffix replaced by .lock.
func defaultLockPath(specPath string) string {
	ext := filepath.Ext(specPath)
	if ext == ".yaml" || ext == ".yml" {
		return strings.TrimSuffix(specPath, ext) + ".lock"
	}
	return specPath + ".lock"
}

func runLock(ctx context.Context, a *cli.App, o LockOptions, specPath string) error {
	s, err := spec.Load(specPath)
	if err != nil {
		return err
	}
	var repos []debrepo.Repo
	if len(s.Repositories) == 0 {
		if repos, err = debrepo.HostRepos(o.AptRoot); err != nil {
			return err
		}
		a.Log.Info("no repository in the spec: using the host's apt sources", "sources", len(repos))
	} else {
		for i := range s.Repositories {
			r, err := debrepo.RepoFromSpec(s, i)
			if err != nil {
				return fmt.Errorf("%s: %w", specPath, err)
			}
			repos = append(repos, r)
		}
	}
	c := &debrepo.Client{Progress: func(url string, size int64) {
		a.Log.Debug("fetched", "url", url, "bytes", size)
	}}
	idx, err := c.FetchIndex(ctx, repos, s.Architectures)
	if err != nil {
		return err
	}
	for _, su := range idx.Suites {
		a.Log.Info("verified", "suite", su.URL+" "+su.Suite, "signer", su.Signer.Name, "key", su.Signer.KeyID, "date", su.Release.RawDate)
	}
	local, err := builder.LocalPackages(s)
	if err != nil {
		return fmt.Errorf("%s: %w", specPath, err)
	}
	idx.Packages = append(idx.Packages, local...)
	pkgs, err := resolve.Resolve(ctx, idx, resolve.Request{Architectures: s.Architectures, Variant: s.Variant,
		Packages: append(slices.Clone(s.Packages), builder.LocalRequests(local)...)})
	if err != nil {
		return fmt.Errorf("%s: %w", specPath, err)
	}
	l := resolve.NewLock(idx, pkgs, s.ResolveDigest())
	builder.MarkLocal(l, s, local)
	var buf bytes.Buffer
	if err := l.Write(&buf); err != nil {
		return err
	}
	out := o.Output
	if out == "" {
		out = defaultLockPath(specPath)
	}
	if o.Check {
		old, err := spec.LoadLock(out)
		if err != nil {
			return err
		}
		changes := diffLocks(old, l)
		for _, c := range changes {
			a.Println(c)
		}
		if len(changes) > 0 {
			return fmt.Errorf("%s is out of date: %d package changes: %w", out, len(changes), cli.ErrNegative)
		}
		a.Printf("%s is up to date (%d packages)\n", out, len(l.Packages))
		return nil
	}
	if out == "-" {
		if _, err := a.Stdout.Write(buf.Bytes()); err != nil {
			return err
		}
	} else if err := atomicfile.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	var size int64
	for _, p := range l.Packages {
		size += p.Size
	}
	if o.JSON {
		enc := json.NewEncoder(a.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Lock            string `json:"lock"`
			Packages        int    `json:"packages"`
			DownloadBytes   int64  `json:"download_bytes"`
			Suites          int    `json:"suites"`
			SourceDateEpoch int64  `json:"source_date_epoch"`
		}{out, len(l.Packages), size, len(l.Repositories), l.SourceDateEpoch})
	}
	if out != "-" {
		a.Printf("locked %d packages (%.1f MiB) from %d suites into %s; SOURCE_DATE_EPOCH=%d\n",
			len(l.Packages), float64(size)/(1<<20), len(l.Repositories), out, l.SourceDateEpoch)
	}
	return nil
}

// diffLocks lists how the packages of b differ from a's, sorted by name:
// "+ name version arch" added, "- …" removed, "~ name old -> new arch"
// changed (a new version, or the same version with other bytes). A
// changed spec digest is listed first.
func diffLocks(a, b *spec.Lock) []string {
	key := func(p spec.LockedPackage) string { return p.Name + ":" + p.Architecture }
	old := map[string]spec.LockedPackage{}
	for _, p := range a.Packages {
		old[key(p)] = p
	}
	var out []string
	seen := map[string]bool{}
	for _, p := range b.Packages {
		k := key(p)
		seen[k] = true
		o, ok := old[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("+ %s %s %s", p.Name, p.Version, p.Architecture))
		case o.Version != p.Version:
			out = append(out, fmt.Sprintf("~ %s %s -> %s %s", p.Name, o.Version, p.Version, p.Architecture))
		case o.SHA256 != p.SHA256 || o.Size != p.Size:
			out = append(out, fmt.Sprintf("~ %s %s %s: same version, other bytes (sha256 %s -> %s)", p.Name, p.Version, p.Architecture, o.SHA256[:12], p.SHA256[:12]))
		}
	}
	for _, p := range a.Packages {
		if !seen[key(p)] {
			out = append(out, fmt.Sprintf("- %s %s %s", p.Name, p.Version, p.Architecture))
		}
	}
	slices.SortStableFunc(out, func(x, y string) int { return strings.Compare(x[2:], y[2:]) })
	if a.SpecSHA256 != b.SpecSHA256 {
		out = append([]string{"! the spec changed since the lock was written"}, out...)
	}
	return out
}
