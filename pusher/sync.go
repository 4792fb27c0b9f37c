package pusher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
	"github.com/ingotfleet/ingot/images/store/delta"
	"github.com/ingotfleet/ingot/internal/beneath"
	"github.com/ingotfleet/ingot/internal/glob"
	"github.com/ingotfleet/ingot/internal/rate"
	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/pusher/commit"
	"github.com/ingotfleet/ingot/pusher/fetch"
	"github.com/ingotfleet/ingot/pusher/plan"
	"github.com/ingotfleet/ingot/pusher/signing"
	"github.com/ingotfleet/ingot/triggers"
)

// DefaultLocal are the paths a sync leaves alone unless configured
// otherwise.
var DefaultLocal = []string{
	"etc/resolv.conf", "etc/hostname", "etc/hosts", "etc/machine-id",
	"etc/ssh/ssh_host_*", "var/log/**", "var/lib/ingot-agent/**",
	"home/**", "root/**", "tmp/**", "srv/**",
}

// Syncer syncs one root to images. It holds no network state: each sync
// is given a Source.
type Syncer struct {
	Root     string // the root filesystem ("/" in production)
	StateDir string // on the root's filesystem; a local path when inside Root
	Local    glob.Set
	Cross    glob.Set // mount points under Root a sync may enter
	Trusted  []signing.PublicKey
	Triggers []triggers.Rule // from the agent's config; the image's own come first
	// Concurrency of fetches (default 8).
	Concurrency int
	// WriteLimit bounds the bytes per second written while staging.
	WriteLimit *rate.Limiter
	Log        *slog.Logger
	// Slot, when set, says the root is a slot that is not booted.
	Slot *SlotSync
	// Generations is the anti-rollback record (default
	// StateDir/generations.json). A slot's Syncer shares the host's.
	Generations string

	mu    sync.Mutex // one sync at a time
	cache *StatCache
	quick *quickRecord // the quick-check record, once read or written
	// localMemo remembers IsLocal per path (the globs do not change).
	localMu   sync.Mutex
	localMemo map[string]bool
	memoMu    sync.Mutex
	relOnce   sync.Once
	rel       string
	parsed    map[images.Digest]*images.Manifest
	progress  Progress
	// The root and the state directory, open while a sync runs: host
	// files are read through them (fetch.HostFile).
	rootTree, stateTree *beneath.Dir
}

// Progress is a sync's position, readable while it runs.
type Progress struct {
	Phase      atomic.Value // string
	FilesTotal atomic.Int64
	FilesDone  atomic.Int64
	BytesTotal atomic.Int64
	BytesDone  atomic.Int64
	Fetched    atomic.Int64 // bytes of objects and deltas received
	Deltas     atomic.Int64 // files rebuilt from deltas
	Local      atomic.Int64 // files copied from the host itself
}

// Progress returns where the running (or last) sync is.
func (s *Syncer) Progress() api.ProgressSnapshot {
	p := &s.progress
	ph, _ := p.Phase.Load().(string)
	return api.ProgressSnapshot{Phase: ph, FilesTotal: p.FilesTotal.Load(), FilesDone: p.FilesDone.Load(),
		BytesTotal: p.BytesTotal.Load(), BytesDone: p.BytesDone.Load(), Fetched: p.Fetched.Load(),
		Deltas: p.Deltas.Load(), Local: p.Local.Load()}
}

// State is what the agent remembers between syncs (StateDir/state.json).
type State struct {
	Image      images.Digest `json:"image"`
	Previous   images.Digest `json:"previous"`
	Generation int           `json:"generation"`
	// Backup holds, by content hash, files the last commit replaced.
	Backups map[string]string `json:"backups,omitempty"`
}

func (s *Syncer) path(parts ...string) string {
	return filepath.Join(append([]string{s.StateDir}, parts...)...)
}

// relState is the state directory relative to the root, "" if outside.
func (s *Syncer) relState() string {
	s.relOnce.Do(func() {
		r, err := filepath.Rel(s.Root, s.StateDir)
		if err != nil || r == "." || strings.HasPrefix(r, "..") {
			return
		}
		s.rel = filepath.ToSlash(r)
	})
	return s.rel
}

// IsLocal reports whether a sync leaves path p (or a directory above it) alone.
func (s *Syncer) IsLocal(p string) bool {
	if rs := s.relState(); rs != "" && (p == rs || strings.HasPrefix(p, rs+"/")) {
		return true
	}
	if p == "." {
		return false
	}
	s.localMu.Lock()
	v, ok := s.localMemo[p]
	s.localMu.Unlock()
	if ok {
		return v
	}
	v = s.Local.Match(p) || s.IsLocal(images.Parent(p))
	s.localMu.Lock()
	if s.localMemo == nil {
		s.localMemo = map[string]bool{}
	}
	s.localMemo[p] = v
	s.localMu.Unlock()
	return v
}

// holdsState reports whether p is a directory above the state directory,
// which a sync keeps even when the image does not have it.
func (s *Syncer) holdsState(p string) bool {
	rs := s.relState()
	return rs != "" && strings.HasPrefix(rs, p+"/")
}

func (s *Syncer) planOptions(mounts []string) plan.Options {
	return plan.Options{Local: s.IsLocal, Keep: s.holdsState, Mounts: mounts}
}

// LoadState reads the agent's state (zero when it never synced).
func (s *Syncer) LoadState() (State, error) {
	var st State
	err := readJSON(s.path("state.json"), &st)
	if errors.Is(err, os.ErrNotExist) {
		return State{}, nil
	}
	return st, err
}

func (s *Syncer) init() error {
	for _, d := range []string{"", "manifests", "stage", "backup"} {
		if err := os.MkdirAll(s.path(d), 0o700); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
	}
	// The journal, stage and backups are reached by path: no other user
	// may be able to swap anything on the way to them.
	return beneath.CheckPrivateDir(s.StateDir)
}

// openTrees opens the root and the state directory for a sync.
func (s *Syncer) openTrees() error {
	var err error
	if s.rootTree, err = beneath.Open(s.Root); err != nil {
		return err
	}
	if s.stateTree, err = beneath.Open(s.StateDir); err != nil {
		s.rootTree.Close()
		s.rootTree = nil
		return err
	}
	return nil
}

func (s *Syncer) closeTrees() {
	s.rootTree.Close()
	s.stateTree.Close()
	s.rootTree, s.stateTree = nil, nil
	s.closeSeed()
}

// Recover finishes a commit a crash interrupted. It is called before
// every sync and when the agent starts.
func (s *Syncer) Recover(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recoverLocked(ctx)
}

func (s *Syncer) recoverLocked(ctx context.Context) (bool, error) {
	var j commit.Journal
	err := readJSON(s.path("journal.json"), &j)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recovery: %w", err)
	}
	if s.Log != nil {
		s.Log.Warn("finishing an interrupted commit", "from", j.From, "to", j.To, "ops", len(j.Ops))
	}
	if err := s.init(); err != nil {
		return true, fmt.Errorf("recovery: %w", err)
	}
	if st, err := s.LoadState(); err == nil && j.From != j.To && st.Image == j.To && st.Generation == j.Generation {
		// The commit finished (its state is recorded); only its
		// after-phase triggers may not have run.
	} else if err := s.finishCommit(ctx, &j); err != nil {
		var ce *commit.Error
		if errors.As(err, &ce) && ce.Undone {
			res := api.Result{Image: j.To.String(), From: j.From.String(), Error: "recovery: " + err.Error()}
			s.saveResult(res, true)
		}
		return true, fmt.Errorf("recovery: %w", err)
	}
	// The after-phase triggers of the interrupted sync have not run: run
	// them now, from the rules now on disk and in the config.
	imageRules, err := triggers.LoadDir(filepath.Join(s.Root, triggers.ImageDir))
	if err != nil {
		return true, fmt.Errorf("recovery: %w", err)
	}
	after := triggers.Select(triggers.Merge(imageRules, s.Triggers), triggers.PhaseAfter, j.Changed)
	if len(after) > 0 {
		tr, err := triggers.Run(ctx, after, triggers.Env{Root: s.Root, Image: j.To.String(), Dir: s.path(), Chroot: s.chrootTriggers()})
		res := api.Result{Image: j.To.String(), From: j.From.String(), OK: err == nil, Triggers: tr, Changed: len(j.Changed)}
		if err != nil {
			res.Error = "after recovery: " + err.Error()
		}
		s.saveResult(res, true)
		if err != nil {
			if rerr := s.removeJournal(); rerr != nil {
				err = errors.Join(err, rerr)
			}
			return true, fmt.Errorf("recovery: %w", err)
		}
	}
	return true, s.removeJournal()
}

// finishCommit runs the journal and records the new state.
func (s *Syncer) finishCommit(ctx context.Context, j *commit.Journal) error {
	if err := commit.Run(ctx, s.Root, j, hooks); err != nil {
		var ce *commit.Error
		if errors.As(err, &ce) && ce.Undone {
			// Back at the old image: the journal has done its work, and
			// what this commit staged and set aside goes.
			if rerr := s.removeJournal(); rerr != nil {
				return errors.Join(err, rerr)
			}
			s.discard(j.Backup)
			s.discard(j.Stage)
		}
		return err
	}
	crashPoint("ops-done")
	backups := map[string]string{}
	for _, op := range j.Ops {
		if !op.OldSHA.IsZero() && op.Backup != "" {
			if _, err := os.Lstat(filepath.Join(j.Backup, op.Backup)); err == nil {
				backups[op.OldSHA.String()] = op.Backup
			}
		}
	}
	old, _ := s.LoadState()
	st := State{Image: j.To, Previous: j.From, Generation: j.Generation, Backups: backups}
	if old.Generation == j.Generation && old.Image == j.To {
		// A repair, or recorded already before a crash.
		st = old
	}
	if err := syncfs(s.Root); err != nil {
		return fmt.Errorf("syncing %s: %w", s.Root, err)
	}
	if err := writeJSON(s.path("state.json"), st); err != nil {
		return err
	}
	crashPoint("state")
	// Keep only this generation's backups and no stage.
	s.cleanup(j.Generation)
	return nil
}

// removeJournal ends a sync: the commit and its after-phase triggers are
// done. Until then a restart replays the (idempotent) commit and runs the
// triggers, so they run at least once.
func (s *Syncer) removeJournal() error {
	if err := os.Remove(s.path("journal.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	crashPoint("journal-removed")
	return nil
}

func (s *Syncer) cleanup(gen int) {
	keep := fmt.Sprint(gen)
	for _, d := range []string{"backup", "stage"} {
		ents, _ := os.ReadDir(s.path(d))
		for _, e := range ents {
			if d == "backup" && e.Name() == keep {
				continue
			}
			s.discard(s.path(d, e.Name()))
		}
	}
}

// SyncOptions vary one sync.
type SyncOptions struct {
	// AllowUnsigned skips the signature check (rollback to an image this
	// host already verified).
	AllowUnsigned bool
	// DryRun plans and reports without changing anything.
	DryRun bool
	// Ref is the name:tag the controller resolved to the image: a trusted
	// signature must cover the image under it, and the image must not be
	// older than the one the host synced under it (ErrOlder). Empty: the
	// image is judged by every name it is signed under.
	Ref string
	// AllowRollback accepts an older image: an explicit rollback asked
	// for by the controller.
	AllowRollback bool
	rollback      bool
}

// ErrBusy is returned when a sync is already running.
var ErrBusy = errors.New("pusher: a sync is already running")

// Sync brings the root to image d from src.
func (s *Syncer) Sync(ctx context.Context, d images.Digest, src fetch.Source, opts SyncOptions) (res api.Result) {
	start := time.Now()
	res.Image = d.String()
	res.Rollback = opts.rollback
	if !s.mu.TryLock() {
		res.Error = ErrBusy.Error()
		return res
	}
	defer s.mu.Unlock()
	s.progress = Progress{}
	err := s.sync(ctx, d, src, opts, &res)
	res.Seconds = time.Since(start).Seconds()
	if err != nil {
		res.Error = err.Error()
	} else {
		res.OK = true
	}
	s.setPhase("done")
	if !opts.DryRun {
		// A sync that changed nothing reports without fsync: a crash
		// that loses the report loses no news (the host is as it was).
		s.saveResult(res, !res.OK || res.Changed > 0 || res.Removed > 0)
	}
	return res
}

// saveResult writes res as the last result (LastResult); durable, it is
// synced to disk. A failure leaves the previous report and is logged:
// the sync itself is done (or failed) either way.
func (s *Syncer) saveResult(res api.Result, durable bool) {
	err := writeFileRename(s.path("last-result.json"), 0o600, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		return enc.Encode(res)
	}, durable)
	if err != nil && s.Log != nil {
		s.Log.Warn("saving the sync's result", "err", err)
	}
}

// discard removes what a sync no longer needs (a stage, old backups); a
// failure costs only space, so it is logged, and the next sync's cleanup
// tries again.
func (s *Syncer) discard(path string) {
	if err := os.RemoveAll(path); err != nil && s.Log != nil {
		s.Log.Warn("removing", "path", path, "err", err)
	}
}

// saveStatCache writes the stat cache; without it the next scan hashes more,
// so a failure is logged.
func (s *Syncer) saveStatCache() {
	if err := s.cache.Save(s.path("statcache")); err != nil && s.Log != nil {
		s.Log.Warn("saving the stat cache", "err", err)
	}
}

// LastResult is the result of the last sync that was not a dry run, as
// it saved it (StateDir/last-result.json); nil when there is none or it
// cannot be read.
func (s *Syncer) LastResult() *api.Result {
	var last api.Result
	if readJSON(s.path("last-result.json"), &last) != nil {
		return nil
	}
	return &last
}

func (s *Syncer) setPhase(p string) { s.progress.Phase.Store(p) }

func (s *Syncer) sync(ctx context.Context, d images.Digest, src fetch.Source, opts SyncOptions, res *api.Result) error {
	if err := s.init(); err != nil {
		return err
	}
	if _, err := s.recoverLocked(ctx); err != nil {
		return err
	}
	if err := s.openTrees(); err != nil {
		return err
	}
	defer s.closeTrees()
	st, err := s.LoadState()
	if err != nil {
		return err
	}
	res.From = st.Image.String()
	if st.Image.IsZero() {
		res.From = ""
	}

	// 1. Signature and manifest.
	s.setPhase("manifest")
	var statements []signing.Statement
	if !opts.AllowUnsigned {
		if statements, err = s.verifyImage(ctx, d, src, opts, st); err != nil {
			return err
		}
	}
	if st.Image == d {
		// The quick check: nothing changed since a full scan found the
		// host at d (quick.go).
		s.setPhase("scan")
		if s.quickUnchanged(ctx, d) {
			if opts.DryRun {
				return nil
			}
			return s.recordFresh(d, statements, opts.AllowRollback)
		}
	}
	mb, saved, want, err := s.loadManifest(ctx, d, st, src)
	if err != nil {
		return err
	}

	// 2. Plan against the host.
	s.setPhase("scan")
	host, td, pl, err := s.planSync(ctx, d, st, want, res)
	if err != nil || opts.DryRun {
		return err
	}
	if len(pl.Ops) == 0 && st.Image == d {
		// Nothing to do: no journal, no commit, no triggers.
		if s.cache.dirty {
			s.saveStatCache()
		}
		s.saveQuick(d, td)
		return s.recordFresh(d, statements, opts.AllowRollback)
	}
	if !saved {
		if err := writeFileAtomic(s.path("manifests", d.String()), 0o600, func(w io.Writer) error { _, err := w.Write(mb); return err }); err != nil {
			return err
		}
	}

	// Triggers: the image's own, then the agent's (which may override).
	rules, err := s.imageTriggers(ctx, want, s.localIndex(host, st), src)
	if err != nil {
		return err
	}
	rules = triggers.Merge(rules, s.Triggers)

	// 3. Fetch and stage.
	stageDir := s.path("stage", d.String()[:16])
	if err := os.MkdirAll(stageDir, 0o700); err != nil {
		return err
	}
	if err := s.stage(ctx, pl, host, st, d, stageDir, src, res); err != nil {
		if errors.Is(err, unix.ENOSPC) {
			// Give the space back: the host stays as it was.
			s.discard(stageDir)
		}
		return err
	}
	// 4. Journal and commit; 5. after-phase triggers.
	if err := s.commitStaged(ctx, d, st, pl, stageDir, rules, statements, opts, res); err != nil {
		return err
	}
	// 6. The quick-check record, so the next no-change sync is quick.
	s.recordCommitted(ctx, d, want)
	return nil
}

// verifyImage checks the signature of image d and that the host may go to it
// (not older than what it runs, unless opts allow a rollback); it returns
// the signed statements that govern d.
func (s *Syncer) verifyImage(ctx context.Context, d images.Digest, src fetch.Source, opts SyncOptions, st State) ([]signing.Statement, error) {
	sig, err := src.Signature(ctx, d)
	if err != nil && !errors.Is(err, fetch.ErrNotFound) {
		return nil, fmt.Errorf("fetching signature: %w", err)
	}
	signed, err := signing.Verify(d, sig, s.Trusted)
	if err != nil {
		return nil, err
	}
	statements, err := governing(d, signed, opts.Ref)
	if err != nil {
		return nil, err
	}
	gens, err := s.LoadGenerations()
	if err != nil {
		return nil, err
	}
	if err := checkFresh(gens, d, st.Image, statements, opts.AllowRollback); err != nil {
		return nil, err
	}
	return statements, nil
}

// loadManifest returns image d's manifest, its bytes, and whether the agent
// had it saved: saved, else rebuilt from a manifest delta against the
// host's image, else fetched. It tells src the image it reads.
func (s *Syncer) loadManifest(ctx context.Context, d images.Digest, st State, src fetch.Source) ([]byte, bool, *images.Manifest, error) {
	mb, saved := s.savedManifestBytes(d)
	if !saved {
		mb = s.manifestFromDelta(ctx, st.Image, d, src)
	}
	if mb == nil {
		var err error
		if mb, err = src.Manifest(ctx, d); err != nil {
			return nil, false, nil, fmt.Errorf("fetching manifest: %w", err)
		}
	}
	want, err := s.parseManifest(d, mb)
	if err != nil {
		return nil, false, nil, err
	}
	if l, ok := src.(interface {
		UseImage(images.Digest, *images.Manifest)
	}); ok {
		l.UseImage(d, want)
	}
	return mb, saved, want, nil
}

// planSync scans the host and plans the sync to want; it fills in res's
// drift and counts. It refuses an image the host cannot take.
func (s *Syncer) planSync(ctx context.Context, d images.Digest, st State, want *images.Manifest, res *api.Result) ([]Node, TreeDigest, *plan.Plan, error) {
	host, mounts, td, err := s.scanDigest(ctx)
	if err != nil {
		return nil, td, nil, err
	}
	popts := s.planOptions(mounts)
	pl := plan.Make(host, want, popts)
	if len(pl.Refused) > 0 {
		why := pl.Refused
		if len(why) > 5 {
			why = append(why[:5:5], fmt.Sprintf("and %d more", len(pl.Refused)-5))
		}
		return nil, td, nil, fmt.Errorf("image %s refused for this host: %s", d, strings.Join(why, "; "))
	}
	if st.Image == d {
		res.Drift = slices.Clone(pl.Changed)
	} else if !st.Image.IsZero() && !s.quickMatches(st.Image, td) {
		// (A host exactly as a full scan found it at its image has no
		// drift: the saved manifest is not read and compared.)
		if cur, err := s.savedManifest(st.Image); err == nil {
			res.Drift = plan.Drift(host, cur, popts)
		}
	}
	if len(res.Drift) > 1000 {
		res.Drift = append(res.Drift[:1000], fmt.Sprintf("… and %d more", len(res.Drift)-1000))
	}
	res.Changed = len(pl.Changed)
	for _, op := range pl.Ops {
		if op.Kind == plan.OpRemove {
			res.Removed++
		}
	}
	return host, td, pl, nil
}

// commitStaged takes the staged image d live: before-phase triggers (which may
// veto), the journal, the commit, the record of the image's generation,
// then after-phase triggers.
func (s *Syncer) commitStaged(ctx context.Context, d images.Digest, st State, pl *plan.Plan, stageDir string, rules []triggers.Rule, statements []signing.Statement, opts SyncOptions, res *api.Result) error {
	// Before-phase triggers may veto the commit.
	tenv := triggers.Env{Root: s.Root, Image: d.String(), Dir: s.path(), Chroot: s.chrootTriggers()}
	if before := triggers.Select(rules, triggers.PhaseBefore, pl.Changed); len(before) > 0 {
		s.setPhase("triggers-before")
		tr, err := triggers.Run(ctx, before, tenv)
		res.Triggers = append(res.Triggers, tr...)
		if err != nil {
			return err
		}
	}

	// Journal, then commit.
	s.setPhase("commit")
	gen := st.Generation + 1
	j := &commit.Journal{From: st.Image, To: d, Generation: gen, Stage: stageDir, Backup: s.path("backup", fmt.Sprint(gen)), Ops: pl.Ops, Changed: pl.Changed}
	if st.Image == d {
		// A repair of drift: the image and the rollback target stay.
		j.Generation = st.Generation
		j.Backup = s.path("backup", fmt.Sprint(st.Generation), "repair")
	}
	if err := os.RemoveAll(j.Backup); err != nil {
		return fmt.Errorf("clearing the backup directory: %w", err)
	}
	s.dropQuick()
	if err := syncfs(s.Root); err != nil {
		return fmt.Errorf("syncing staged files: %w", err)
	}
	crashPoint("before-journal")
	// Compact: a journal holds an op per changed path (7,700 for the
	// Debian update), and only recovery reads it.
	if err := writeFileAtomic(s.path("journal.json"), 0o600, func(w io.Writer) error { return json.NewEncoder(w).Encode(j) }); err != nil {
		return fmt.Errorf("writing journal: %w", err)
	}
	crashPoint("journal")
	after := triggers.Select(rules, triggers.PhaseAfter, pl.Changed)
	if err := s.finishCommit(context.WithoutCancel(ctx), j); err != nil {
		return err
	}
	s.saveCache(pl)
	if err := s.recordFresh(d, statements, opts.AllowRollback); err != nil {
		return fmt.Errorf("recording the image's generation: %w", err)
	}

	// After-phase triggers.
	if len(after) > 0 {
		s.setPhase("triggers-after")
		tr, err := triggers.Run(ctx, after, tenv)
		res.Triggers = append(res.Triggers, tr...)
		if err != nil {
			if rerr := s.removeJournal(); rerr != nil {
				err = errors.Join(err, rerr)
			}
			return err
		}
	}
	return s.removeJournal()
}

// savedManifestBytes returns the manifest of d when the agent kept it
// (checked against d).
func (s *Syncer) savedManifestBytes(d images.Digest) ([]byte, bool) {
	b, err := os.ReadFile(s.path("manifests", d.String()))
	if err != nil || images.Sum(b) != d {
		return nil, false
	}
	return b, true
}

// manifestFromDelta rebuilds the manifest of d from the store's delta
// against the manifest of the host's image, kept from its last sync
// (checked against d: ApplyDelta hashes the result); nil when there is
// none.
func (s *Syncer) manifestFromDelta(ctx context.Context, cur, d images.Digest, src fetch.Source) []byte {
	if cur.IsZero() || cur == d {
		return nil
	}
	old, ok := s.savedManifestBytes(cur)
	if !ok {
		return nil
	}
	mb, err := src.Delta(ctx, cur, d, delta.NewBase(old), store.ManifestDeltaLimit(len(old)))
	if err != nil {
		if !errors.Is(err, fetch.ErrNotFound) && s.Log != nil {
			s.Log.Warn("manifest delta failed; fetching the whole manifest", "err", err)
		}
		return nil
	}
	return mb
}

// parseManifest parses and validates mb (the manifest of d), remembering
// the last few so a daemon's repeated syncs skip the work.
func (s *Syncer) parseManifest(d images.Digest, mb []byte) (*images.Manifest, error) {
	s.memoMu.Lock()
	m, ok := s.parsed[d]
	s.memoMu.Unlock()
	if ok {
		return m, nil
	}
	m, err := images.ParseManifest(bytes.NewReader(mb))
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", d, err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("image %s: %w", d, err)
	}
	s.memoMu.Lock()
	if s.parsed == nil || len(s.parsed) >= 3 {
		s.parsed = map[images.Digest]*images.Manifest{}
	}
	s.parsed[d] = m
	s.memoMu.Unlock()
	return m, nil
}

func (s *Syncer) savedManifest(d images.Digest) (*images.Manifest, error) {
	b, err := os.ReadFile(s.path("manifests", d.String()))
	if err != nil {
		return nil, err
	}
	if images.Sum(b) != d {
		return nil, fmt.Errorf("%w: saved manifest %s", fetch.ErrCorrupt, d)
	}
	return images.ParseManifest(bytes.NewReader(b))
}

// scanOptions are the options of a sync's scan: every path but local
// ones, staying on the root's filesystem. Mount points not entered are
// added to mounts (when not nil).
func (s *Syncer) scanOptions(mounts *[]string) ScanOptions {
	var mu sync.Mutex
	return ScanOptions{
		Skip:          s.IsLocal,
		OneFileSystem: true,
		Cross: func(p string) bool {
			if s.Cross.Match(p) {
				return true
			}
			if mounts != nil {
				mu.Lock()
				*mounts = append(*mounts, p)
				mu.Unlock()
			}
			return false
		},
	}
}

// scan looks at the host. It returns the mount points it did not enter.
func (s *Syncer) scan(ctx context.Context) ([]Node, []string, error) {
	nodes, mounts, _, err := s.scanDigest(ctx)
	return nodes, mounts, err
}

// scanDigest is scan that also returns the digest of what it saw (for
// the quick check).
func (s *Syncer) scanDigest(ctx context.Context) ([]Node, []string, TreeDigest, error) {
	cache := s.cache
	if cache == nil {
		cache = LoadStatCache(s.path("statcache"))
	}
	var mounts []string
	opts := s.scanOptions(&mounts)
	opts.Cache = cache
	nodes, td, err := scanDigest(ctx, s.Root, opts)
	if err != nil {
		return nil, nil, TreeDigest{}, err
	}
	s.cache = cache
	slices.Sort(mounts)
	return nodes, mounts, td, nil
}

// statNode stats rel beneath the root, in its parent's descriptor.
func (s *Syncer) statNode(rel string) (Node, error) {
	pfd, name, err := s.rootTree.Parent(rel)
	if err != nil {
		return Node{}, err
	}
	defer unix.Close(pfd)
	return statNodeAt(pfd, name, rel, s.rootTree.Abs(rel))
}

func (s *Syncer) saveCache(pl *plan.Plan) {
	// The commit wrote files whose content it knows: record their new
	// inode facts so the next sync reads none of them again.
	if s.cache == nil {
		return
	}
	for _, op := range pl.Ops {
		if op.Entry == nil || op.Entry.Type != images.TypeFile || (op.Kind != plan.OpPut && op.Kind != plan.OpAttrs) {
			continue
		}
		// An attrs op never reads the file: its content is the planning
		// scan's. Someone other than root who could write the file then
		// (or can now) may have changed it since, so its facts are not
		// vouched for: the next scan reads it (TestAttackWriteBeforeChmod).
		if op.Kind == plan.OpAttrs && othersMayWrite(op.Old) || othersMayWrite(op.Entry) {
			continue
		}
		n, err := s.statNode(op.Path)
		if err != nil || n.Type != images.TypeFile || n.Size != op.Entry.Size || othersMayWrite(&n.Entry) {
			continue
		}
		n.SHA256 = op.Entry.SHA256
		n.Xattrs = op.Entry.Xattrs
		s.cache.store(&n)
	}
	s.saveStatCache()
}

// othersMayWrite reports whether a user other than root may write a file
// with entry e's owner, mode and ACL (nil: unknown, so yes).
func othersMayWrite(e *images.Entry) bool {
	if e == nil || e.UID != 0 || e.Mode&0o022 != 0 {
		return true
	}
	_, acl := e.Xattrs["system.posix_acl_access"]
	return acl
}

// maxTriggerFile bounds a trigger rules file of the image (read whole).
const maxTriggerFile = 1 << 20

// imageTriggers reads the rules the image ships in etc/ingot/triggers.d.
func (s *Syncer) imageTriggers(ctx context.Context, m *images.Manifest, local map[images.Digest]fetch.HostFile, src fetch.Source) ([]triggers.Rule, error) {
	var rules []triggers.Rule
	prefix := triggers.ImageDir + "/"
	for i := range m.Entries {
		e := m.Resolve(&m.Entries[i])
		p := m.Entries[i].Path
		if !strings.HasPrefix(p, prefix) || strings.Contains(p[len(prefix):], "/") || !strings.HasSuffix(p, ".yaml") || e == nil || e.Type != images.TypeFile {
			continue
		}
		if e.Size > maxTriggerFile {
			return nil, fmt.Errorf("reading trigger rules %s: %d bytes, the most is %d", p, e.Size, maxTriggerFile)
		}
		buf := &fetch.MemSink{Max: maxTriggerFile}
		if err := s.fill(ctx, buf, e.SHA256, e.Size, []*plan.Op{{Path: p}}, local, nil, nil, nil, src); err != nil {
			return nil, fmt.Errorf("reading trigger rules %s: %w", p, err)
		}
		b := buf.Bytes()
		rs, err := triggers.ParseBytes(p, b)
		if err != nil {
			return nil, err
		}
		rules = append(rules, rs...)
	}
	return rules, nil
}
