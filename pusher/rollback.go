package pusher

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/delta"
	"github.com/ingotfleet/ingot/pusher/api"
	"github.com/ingotfleet/ingot/pusher/fetch"
	"github.com/ingotfleet/ingot/pusher/plan"
)

// ErrNoPrevious is returned by Rollback on a host that has no previous image.
var ErrNoPrevious = errors.New("pusher: no previous image to roll back to")

// Rollback returns the root to the image before the current one, using
// only what is on the host: the saved manifest, the files the last commit
// replaced, and the files still in place. It needs no network. It is a
// sync like any other (staged, journaled, crash-safe), so rolling back
// twice returns to where it started.
func (s *Syncer) Rollback(ctx context.Context) api.Result {
	st, err := s.LoadState()
	if err == nil && st.Previous.IsZero() {
		err = ErrNoPrevious
	}
	if err != nil {
		return api.Result{Error: err.Error(), Rollback: true}
	}
	return s.Sync(ctx, st.Previous, localSource{s}, SyncOptions{AllowUnsigned: true, rollback: true})
}

// localSource serves what the agent keeps: saved manifests and nothing
// else; every file must come from the host itself.
type localSource struct{ s *Syncer }

func (l localSource) Manifest(_ context.Context, d images.Digest) ([]byte, error) {
	b, err := os.ReadFile(l.s.path("manifests", d.String()))
	if err != nil {
		return nil, fmt.Errorf("rollback: saved manifest %s: %w", d, err)
	}
	if images.Sum(b) != d {
		return nil, fmt.Errorf("%w: saved manifest %s", fetch.ErrCorrupt, d)
	}
	return b, nil
}

func (l localSource) Signature(context.Context, images.Digest) ([]byte, error) {
	return nil, fetch.ErrNotFound
}

func (l localSource) Object(_ context.Context, sha images.Digest, _ int64) ([]byte, error) {
	return nil, fmt.Errorf("%w: rollback needs %s, which the host no longer holds", fetch.ErrNotFound, sha)
}

func (l localSource) Delta(context.Context, images.Digest, images.Digest, *delta.Base, int64) ([]byte, error) {
	return nil, fetch.ErrNotFound
}

// VerifyRoot compares a root with an image, leaving out local paths and
// other filesystems as a sync does, and lists the paths that differ.
func (s *Syncer) VerifyRoot(ctx context.Context, m *images.Manifest) ([]string, error) {
	host, mounts, err := s.scan(ctx)
	if err != nil {
		return nil, err
	}
	return plan.Make(host, m, s.planOptions(mounts)).Changed, nil
}
