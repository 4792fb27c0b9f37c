package normalize

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ingotfleet/ingot/internal/glob"
)

// Action is what happens to a path on the noise list.
type Action string

// The actions of the noise list.
const (
	// Delete removes the path (a directory with everything below it).
	Delete Action = "delete"
	// DeleteContents empties a directory but keeps it.
	DeleteContents Action = "delete-contents"
	// Blank truncates a file to zero bytes (keeping its owner and mode).
	Blank Action = "blank"
	// ClampShadow sets the last-change field (days since the epoch) of
	// every shadow(5) entry that has one to the day of SOURCE_DATE_EPOCH.
	ClampShadow Action = "clamp-shadow"
	// Regenerate removes the path from the image; the host makes its own
	// on first boot (how is in the rule's Reason).
	Regenerate Action = "regenerate-on-first-boot"
	// Keep protects a path from the rules after it (an exception).
	Keep Action = "keep"
)

// NoiseRule is one entry of the noise list.
type NoiseRule struct {
	Pattern string // absolute path glob (internal/glob), matched against every path
	Action  Action
	Reason  string
}

// NoiseVersion is the version of NoiseList. It is recorded in every
// build's provenance; bump it whenever an entry changes, since the same
// lock can then give another image.
const NoiseVersion = 1

// NoiseList is what every build removes or fixes because it differs from
// one build to the next, or because it belongs to the host an image is
// installed on rather than to the image. See docs/noise.md.
var NoiseList = []NoiseRule{
	{"/var/log/dpkg.log", Delete, "dpkg's log of this build, with wall-clock times"},
	{"/var/log/alternatives.log", Delete, "update-alternatives' log of this build, with wall-clock times"},
	{"/var/log/apt/*.log", Delete, "apt's logs (history, term) of this build, with wall-clock times"},
	{"/var/log/apt/eipp.log.xz", Delete, "apt's solver dump of this build"},
	{"/var/log/bootstrap.log", Delete, "debootstrap-style build log"},
	{"/var/log/journal/*", Delete, "journal files written during the build, with boot ids and times"},
	{"/var/cache/ldconfig/aux-cache", Delete, "ldconfig's auxiliary cache records inode numbers and ctimes of the build tree"},
	{"/etc/machine-id", Blank, "unique per machine; an empty file makes systemd generate one on first boot (machine-id(5))"},
	{"/var/lib/dbus/machine-id", Delete, "unique per machine; dbus falls back to /etc/machine-id"},
	{"/var/lib/systemd/random-seed", Delete, "random seed saved during the build; must never be shared between hosts"},
	{"/etc/ssh/ssh_host_*", Regenerate, "host keys are secret and unique per host (mmdebstrap leaves random ones); generate them on first boot with `ssh-keygen -A` (the pusher treats them as local paths)"},
	{"/var/lib/dpkg/*-old", Delete, "dpkg's backup copies of its database (status-old, diversions-old, statoverride-old) from during the build"},
	{"/var/cache/debconf/*-old", Delete, "debconf's backup copies of its database from during the build"},
	{"/etc/shadow", ClampShadow, "useradd records the day a password was last changed: the build day"},
	{"/etc/shadow-", ClampShadow, "backup copy of /etc/shadow (see /etc/shadow)"},
	{"/var/lib/apt/lists/partial", Keep, "shipped by apt: an exception to the next rule"},
	{"/var/lib/apt/lists/*", Delete, "apt's package lists and their lock: a cache, stale as soon as the image is built (the directory itself stays)"},
	{"/var/cache/apt/*.bin", Delete, "apt's binary caches (pkgcache.bin, srcpkgcache.bin)"},
	{"/var/cache/apt/archives/*.deb", Delete, "downloaded packages"},
	{"/var/cache/apt/archives/lock", Delete, "apt's lock file, left by an apt run during the build"},
	{"/tmp/*", Delete, "temporary files of the build's scripts"},
	{"/var/tmp/*", Delete, "temporary files of the build's scripts"},
	{"/run/lock", Keep, "/var/lock points to it (Debian policy 9.1.4); mmdebstrap keeps it too"},
	{"/run/*", Delete, "runtime state of the build's scripts (/run is a tmpfs on a running host)"},
	{"/etc/hostname", Delete, "the host's own name: a local path of every host, never taken from the build host (mmdebstrap copies the build host's)"},
	{"/etc/resolv.conf", Delete, "the host's own resolver configuration: a local path, never taken from the build host (mmdebstrap copies the build host's)"},
	{"/root/.bash_history", Delete, "shell history of the build"},
	{"/root/.python_history", Delete, "Python history of the build"},
	{"/var/cache/man/*", Delete, "man-db's index, rebuilt by man-db.timer; it records the build's times"},
	{"/var/lib/sgml-base/*-old", Delete, "backup copies written during the build"},
}

// NoiseApplied is one path the noise list acted on.
type NoiseApplied struct {
	Path   string // absolute, in the image
	Action Action
}

// WalkImage walks the tree at root in lexical order without following
// symlinks, calling fn for every path below the root with its absolute
// image path ("/etc/passwd"), its path on the host and its DirEntry. It
// checks ctx at every path; fn may return filepath.SkipDir.
func WalkImage(ctx context.Context, root string, fn func(abs, p string, d fs.DirEntry) error) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		return fn("/"+filepath.ToSlash(rel), p, d)
	})
}

// ApplyNoise applies rules to the tree at root. Paths are matched as
// absolute image paths; a rule listed earlier wins. It never follows a
// symlink out of the root.
func ApplyNoise(ctx context.Context, root string, rules []NoiseRule, sourceDateEpoch int64) ([]NoiseApplied, error) {
	globs := make([]glob.Glob, len(rules))
	for i, r := range rules {
		g, err := glob.Compile(r.Pattern)
		if err != nil {
			return nil, fmt.Errorf("noise rule %d: %w", i, err)
		}
		globs[i] = g
	}
	var done []NoiseApplied
	var del []string // relative paths to remove, in walk order
	var empty []string
	err := WalkImage(ctx, root, func(abs, p string, d fs.DirEntry) error {
		for i, r := range rules {
			if !globs[i].Match(abs) {
				continue
			}
			if r.Action == Keep {
				return nil
			}
			done = append(done, NoiseApplied{Path: abs, Action: r.Action})
			switch r.Action {
			case Delete, Regenerate:
				del = append(del, p)
				if d.IsDir() {
					return filepath.SkipDir
				}
			case DeleteContents:
				if d.IsDir() {
					empty = append(empty, p)
					return filepath.SkipDir
				}
			case Blank:
				if d.Type().IsRegular() {
					if err := blank(p); err != nil {
						return err
					}
				}
			case ClampShadow:
				if d.Type().IsRegular() {
					if err := clampShadow(p, sourceDateEpoch); err != nil {
						return err
					}
				}
			}
			return nil
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("applying the noise list: %w", err)
	}
	for _, p := range del {
		if err := os.RemoveAll(p); err != nil {
			return nil, fmt.Errorf("applying the noise list: %w", err)
		}
	}
	for _, p := range empty {
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(p, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[i].Path < done[j].Path })
	return done, nil
}

func blank(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC|noFollow, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// clampShadow rewrites field 3 (last password change, in days) of every
// entry of a shadow file to the day of sde, when it is set and later.
func clampShadow(p string, sde int64) error {
	day := sde / 86400
	_, err := rewriteInPlace(p, func(b []byte) ([]byte, bool, error) {
		lines := bytes.Split(b, []byte("\n"))
		changed := false
		for i, l := range lines {
			f := strings.Split(string(l), ":")
			if len(f) < 3 || f[2] == "" {
				continue
			}
			v, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil || v <= day {
				continue
			}
			f[2] = strconv.FormatInt(day, 10)
			lines[i] = []byte(strings.Join(f, ":"))
			changed = true
		}
		return bytes.Join(lines, []byte("\n")), changed, nil
	})
	return err
}
