package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ingotfleet/ingot/images"
)

// A ref file arrives over the network: what is accepted is exactly a
// digest and a newline.
func FuzzParseRefFile(f *testing.F) {
	d := images.Sum([]byte("x"))
	f.Add([]byte(d.String() + "\n"))
	f.Add([]byte(strings.ToUpper(d.String()) + "\n"))
	f.Add([]byte("sha256:" + d.String() + "\n"))
	f.Add([]byte(d.String()))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseRefFile(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if string(data) != got.String()+"\n" {
			t.Errorf("accepted %q as %s", data, got)
		}
	})
}

// Every object a store hands back is read through get, which must bound
// what it decompresses whatever the bytes: a hostile store chooses them.
// What it returns is at most the limit and is what a plain decoder makes
// of the same bytes.
func FuzzGetBounded(f *testing.F) {
	enc, _ := zstd.NewWriter(nil)
	defer enc.Close()
	f.Add(enc.EncodeAll([]byte("hello, hello, hello"), nil), uint32(100))
	f.Add(enc.EncodeAll(bytes.Repeat([]byte{0}, 5000), nil), uint32(4000))
	f.Add(enc.EncodeAll(bytes.Repeat([]byte{7}, MaxChunk+1), nil), uint32(MaxChunk))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38, 0x03, 0x00, 0x10, 0x00}, uint32(1000)) // one RLE block of 131072
	f.Add([]byte("not zstd"), uint32(10))
	f.Fuzz(func(t *testing.T, raw []byte, limit uint32) {
		max := int64(limit%(2*MaxChunk)) + 1
		b := memBackend{}
		h := DigestHandle(KindList, images.Sum(raw))
		b[h] = raw
		s := New(b)
		defer s.Close()
		got, err := s.get(context.Background(), h, max)
		if err != nil {
			if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v wraps neither ErrTooLarge nor ErrCorrupt", err)
			}
			return
		}
		if int64(len(got)) > max {
			t.Fatalf("returned %d bytes, the limit is %d", len(got), max)
		}
		dec, _ := zstd.NewReader(bytes.NewReader(raw), zstd.WithDecoderConcurrency(1))
		defer dec.Close()
		want, werr := io.ReadAll(io.LimitReader(dec, max+1))
		if werr != nil || !bytes.Equal(got, want) {
			t.Errorf("returned %d bytes; a plain decoder makes %d bytes (%v) of them", len(got), len(want), werr)
		}
	})
}

// memBackend is a read-only Backend over a map, honouring Get's limit.
type memBackend map[Handle][]byte

func (m memBackend) Location() string { return "memory" }
func (m memBackend) Get(_ context.Context, h Handle, max int64) ([]byte, error) {
	b, ok := m[h]
	if !ok {
		return nil, ErrNotFound
	}
	if int64(len(b)) > max {
		return nil, tooLarge(h, "memory", "the file is", max)
	}
	return b, nil
}
func (m memBackend) GetRange(_ context.Context, h Handle, off, n int64) ([]byte, error) {
	b, ok := m[h]
	if !ok {
		return nil, ErrNotFound
	}
	if off < 0 || n <= 0 || off > int64(len(b)) || n > int64(len(b))-off {
		return nil, ErrCorrupt
	}
	return b[off : off+n], nil
}
func (m memBackend) Has(_ context.Context, h Handle) (bool, error)   { _, ok := m[h]; return ok, nil }
func (m memBackend) Put(context.Context, Handle, []byte, bool) error { return ErrReadOnly }
func (m memBackend) Delete(context.Context, Handle) error            { return ErrReadOnly }
func (m memBackend) List(context.Context, Kind, func(string) error) error {
	return ErrNotSupported
}
func (m memBackend) Sync(context.Context) error { return nil }
