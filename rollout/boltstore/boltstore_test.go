package boltstore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ingotfleet/ingot/rollout"
	"github.com/ingotfleet/ingot/rollout/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Opener{New: func(t *testing.T) func(context.Context) (rollout.Store, error) {
		path := filepath.Join(t.TempDir(), "state.db")
		return func(context.Context) (rollout.Store, error) { return Open(path) }
	}})
}
