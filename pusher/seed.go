package pusher

import (
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/beneath"
	"github.com/ingotfleet/ingot/pusher/fetch"
)

// SlotSync makes a Syncer write a root slot that is not booted: content
// the booted root already holds is copied from it instead of fetched,
// and triggers run chrooted into the slot.
type SlotSync struct {
	// SeedRoot is the booted root; SeedManifest the image it was last
	// synced to, which says where its files are. A seed file whose
	// bytes no longer hash to the manifest's is skipped (fetched).
	SeedRoot     string
	SeedManifest *images.Manifest
	// Chroot runs the triggers chrooted into the slot.
	Chroot bool

	tree *beneath.Dir
}

// seedIndex adds the seed's files to local (content hash → where).
func (s *Syncer) seedIndex(local map[images.Digest]fetch.HostFile) {
	sl := s.Slot
	if sl == nil || sl.SeedRoot == "" || sl.SeedManifest == nil {
		return
	}
	if sl.tree == nil {
		t, err := beneath.Open(sl.SeedRoot)
		if err != nil {
			if s.Log != nil {
				s.Log.Warn("cannot read the booted slot; fetching everything", "err", err)
			}
			return
		}
		sl.tree = t
	}
	for i := range sl.SeedManifest.Entries {
		e := &sl.SeedManifest.Entries[i]
		if e.Type != images.TypeFile || e.SHA256.IsZero() || s.IsLocal(e.Path) {
			continue
		}
		if _, ok := local[e.SHA256]; !ok {
			local[e.SHA256] = fetch.HostFile{Dir: sl.tree, Rel: e.Path}
		}
	}
}

func (s *Syncer) closeSeed() {
	if s.Slot != nil && s.Slot.tree != nil {
		_ = s.Slot.tree.Close() // a directory, read-only
		s.Slot.tree = nil
	}
}

func (s *Syncer) chrootTriggers() bool { return s.Slot != nil && s.Slot.Chroot }
