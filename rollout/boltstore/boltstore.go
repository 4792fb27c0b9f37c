package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ingotfleet/ingot/rollout"
)

var bucket = []byte("rollout")

// Store is a rollout.Store in a bbolt file.
type Store struct{ db *bolt.DB }

var _ rollout.Store = (*Store)(nil)

// Open opens (creating) the store file at path. A second controller on
// the same file waits for the first to close it, up to a second, then
// fails.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening state %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		_ = db.Close() // the bucket's error is the one to report
		return nil, fmt.Errorf("opening state %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Get implements rollout.Store.
func (s *Store) Get(_ context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucket).Get([]byte(key)); b != nil {
			v = bytes.Clone(b)
			if v == nil {
				v = []byte{}
			}
		}
		return nil
	})
	return v, err
}

// List implements rollout.Store.
func (s *Store) List(_ context.Context, prefix string) (map[string][]byte, error) {
	m := map[string][]byte{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			cv := bytes.Clone(v)
			if cv == nil {
				cv = []byte{}
			}
			m[string(k)] = cv
		}
		return nil
	})
	return m, err
}

// Commit implements rollout.Store.
func (s *Store) Commit(ctx context.Context, puts map[string][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(puts) == 0 {
		return nil
	}
	// Batch joins commits made at the same time into one transaction and
	// one fsync; each returns once its puts are on disk. The function may
	// run more than once, which puts and deletes bear.
	return s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for k, v := range puts {
			var err error
			if v == nil {
				err = b.Delete([]byte(k))
			} else {
				err = b.Put([]byte(k), bytes.Clone(v))
			}
			if err != nil {
				return fmt.Errorf("committing %s: %w", k, err)
			}
		}
		return nil
	})
}

// Close implements rollout.Store.
func (s *Store) Close() error { return s.db.Close() }
