package store

import (
	"bytes"
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// Two puts of the same content give the same hash and store each chunk
// once; a one-byte change to a 50 MiB file stores at most three new chunks.
func TestPutFileDedup(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(5, 50<<20)
	count := func() int {
		n := 0
		s.b.List(ctx, KindObject, func(string) error { n++; return nil })
		return n
	}
	sha1, _, err := s.PutFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	n1 := count()
	sha2, _, err := s.PutFile(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if sha1 != sha2 || count() != n1 {
		t.Errorf("second put: %s and %d objects, want %s and %d", sha2, count(), sha1, n1)
	}
	data[len(data)/2] ^= 1
	if _, _, err := s.PutFile(ctx, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if added := count() - n1; added < 1 || added > 3 {
		t.Errorf("one-byte change stored %d new chunks, want 1 to 3", added)
	}
}

func BenchmarkPutFile(b *testing.B) {
	ctx := context.Background()
	data := randomBytes(7, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s, err := Open(filepath.Join(b.TempDir(), "store"))
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.PutFile(ctx, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}
