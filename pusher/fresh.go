package pusher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/pusher/signing"
)

// Anti-rollback. A store is not trusted: one that answers an old ref
// makes a controller push an older image, validly signed. So a signature
// names the image's name:tag and a generation that only grows, and the
// agent keeps, in its private state directory, the highest generation it
// has synced per name:tag (generations.json). An image whose signed
// generation is lower is refused with ErrOlder, unless the request is an
// explicit rollback from the controller (SyncOptions.AllowRollback, sent
// by `ingot push --allow-rollback` over mutual TLS).

// ErrOlder is returned for an image older than the one the host synced
// for the same name:tag.
var ErrOlder = errors.New("pusher: image older than the one this host runs")

// ErrNotSignedAs is returned when the request names a name:tag no trusted
// signature of the image covers.
var ErrNotSignedAs = errors.New("pusher: image not signed under the name asked for")

// Seen is the highest generation synced for one name:tag, and the image.
type Seen struct {
	Generation uint64        `json:"generation"`
	Image      images.Digest `json:"image"`
}

// Generations maps name:tag to what the host synced last under it.
type Generations map[string]Seen

// GenerationsFile is where the record of generations lives.
func (s *Syncer) GenerationsFile() string {
	if s.Generations != "" {
		return s.Generations
	}
	return s.path("generations.json")
}

// LoadGenerations reads the agent's record (empty on a new host).
func (s *Syncer) LoadGenerations() (Generations, error) {
	g := Generations{}
	err := readJSON(s.GenerationsFile(), &g)
	if errors.Is(err, os.ErrNotExist) {
		return Generations{}, nil
	}
	return g, err
}

// governing picks the statements a sync to d is judged by: those for the
// name:tag asked for (which must be among them), else all of them.
func governing(d images.Digest, signed []signing.Signed, ref string) ([]signing.Statement, error) {
	var out []signing.Statement
	for _, s := range signed {
		if (ref == "" || s.Ref == ref) && !slices.Contains(out, s.Statement) {
			out = append(out, s.Statement)
		}
	}
	if len(out) == 0 {
		var names []string
		for _, s := range signed {
			names = append(names, s.Ref)
		}
		return nil, fmt.Errorf("%w: image %s is signed as %s, not as %s", ErrNotSignedAs, d, strings.Join(names, ", "), ref)
	}
	return out, nil
}

// checkFresh refuses d when a statement it is judged by has a lower
// generation than the host synced under that name:tag. The image the
// host runs is never refused (a repair), nor is an explicit rollback.
func checkFresh(g Generations, d, current images.Digest, sts []signing.Statement, allowRollback bool) error {
	if d == current || allowRollback {
		return nil
	}
	for _, st := range sts {
		if seen, ok := g[st.Ref]; ok && st.Generation < seen.Generation {
			return fmt.Errorf("%w: image %s is %s generation %d; this host synced generation %d (image %s); a rollback must be asked for (ingot push --allow-rollback)",
				ErrOlder, d, st.Ref, st.Generation, seen.Generation, seen.Image)
		}
	}
	return nil
}

// recordFresh notes that the host now runs d under the statements: the
// highest generation per name:tag, or, after an explicit rollback, the
// image's own (the operator chose it; later pushes are judged from it).
func (s *Syncer) recordFresh(d images.Digest, sts []signing.Statement, rollback bool) error {
	if len(sts) == 0 {
		return nil
	}
	g, err := s.LoadGenerations()
	if err != nil {
		return err
	}
	changed := false
	for _, st := range sts {
		if seen, ok := g[st.Ref]; !ok || st.Generation > seen.Generation || (rollback && seen != (Seen{st.Generation, d})) {
			g[st.Ref] = Seen{Generation: st.Generation, Image: d}
			changed = true
		}
	}
	if !changed {
		return nil
	}
	// The record may live outside the state directory (slots keep it
	// beside their own state), made on first use.
	if err := os.MkdirAll(filepath.Dir(s.GenerationsFile()), 0o700); err != nil {
		return err
	}
	return writeJSON(s.GenerationsFile(), g)
}
