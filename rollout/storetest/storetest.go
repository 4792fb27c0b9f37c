package storetest

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/ingotfleet/ingot/rollout"
)

// Opener opens the store under test. Each call to the function that New
// returns opens the same state again (after the previous store was
// closed): it is how the suite checks durability. A shared store must
// come back ready to Commit (campaigned and leading).
type Opener struct {
	// New prepares empty, private state for one subtest and returns the
	// function that opens it.
	New func(t *testing.T) (open func(ctx context.Context) (rollout.Store, error))
}

// Run runs every check against stores from o.
func Run(t *testing.T, o Opener) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			open := o.New(t)
			s, err := open(ctx)
			if err != nil {
				t.Fatalf("opening the store: %v", err)
			}
			h := &harness{t: t, ctx: ctx, open: open, s: s}
			t.Cleanup(func() {
				if h.s != nil {
					_ = h.s.Close() // cleanup only: the cases check what they assert themselves
				}
			})
			c.run(h)
		})
	}
}

type harness struct {
	t    *testing.T
	ctx  context.Context
	open func(ctx context.Context) (rollout.Store, error)
	s    rollout.Store
}

func (h *harness) commit(puts map[string][]byte) {
	h.t.Helper()
	if err := h.s.Commit(h.ctx, puts); err != nil {
		h.t.Fatalf("Commit(%v): %v", keysOf(puts), err)
	}
}

func (h *harness) get(key string) []byte {
	h.t.Helper()
	v, err := h.s.Get(h.ctx, key)
	if err != nil {
		h.t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

func (h *harness) wantValue(key, want string) {
	h.t.Helper()
	got := h.get(key)
	if got == nil {
		h.t.Fatalf("Get(%q) = nil (absent), want %q", key, want)
	}
	if string(got) != want {
		h.t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func (h *harness) wantAbsent(key string) {
	h.t.Helper()
	if got := h.get(key); got != nil {
		h.t.Fatalf("Get(%q) = %q, want nil (absent)", key, got)
	}
}

func (h *harness) list(prefix string) map[string][]byte {
	h.t.Helper()
	m, err := h.s.List(h.ctx, prefix)
	if err != nil {
		h.t.Fatalf("List(%q): %v", prefix, err)
	}
	return m
}

func (h *harness) wantList(prefix string, want map[string]string) {
	h.t.Helper()
	got := h.list(prefix)
	gotS := map[string]string{}
	for k, v := range got {
		gotS[k] = string(v)
	}
	if !maps.Equal(gotS, want) {
		h.t.Fatalf("List(%q) = %v, want %v", prefix, gotS, want)
	}
}

// reopen closes the store and opens the same state again.
func (h *harness) reopen() {
	h.t.Helper()
	if err := h.s.Close(); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
	h.s = nil
	s, err := h.open(h.ctx)
	if err != nil {
		h.t.Fatalf("reopening the store: %v", err)
	}
	h.s = s
}

func keysOf(m map[string][]byte) []string {
	return slices.Sorted(maps.Keys(m))
}

var cases = []struct {
	name string
	run  func(h *harness)
}{
	{"GetMissingIsNil", func(h *harness) {
		h.wantAbsent("nothing/here")
		h.wantList("", map[string]string{})
	}},
	{"CommitThenGet", func(h *harness) {
		h.commit(map[string][]byte{"host/a": []byte("syncing")})
		h.wantValue("host/a", "syncing")
		h.commit(map[string][]byte{"host/a": []byte("done")})
		h.wantValue("host/a", "done")
	}},
	{"EmptyValueIsNotAbsent", func(h *harness) {
		h.commit(map[string][]byte{"flag": {}})
		v := h.get("flag")
		if v == nil || len(v) != 0 {
			h.t.Fatalf("Get of a key committed with an empty value = %#v, want a non-nil empty slice", v)
		}
		if _, ok := h.list("")["flag"]; !ok {
			h.t.Fatalf("List does not show a key whose value is empty")
		}
	}},
	{"CommitMultiKey", func(h *harness) {
		puts := map[string][]byte{}
		for i := range 50 {
			puts[fmt.Sprintf("set/s%02d/host", i)] = []byte(fmt.Sprint(i))
		}
		h.commit(puts)
		got := h.list("set/")
		if len(got) != 50 {
			h.t.Fatalf("List after a commit of 50 keys has %d", len(got))
		}
		for k, v := range puts {
			if !bytes.Equal(got[k], v) {
				h.t.Fatalf("%s = %q, want %q", k, got[k], v)
			}
		}
	}},
	{"NilDeletes", func(h *harness) {
		h.commit(map[string][]byte{"a": []byte("1"), "b": []byte("2")})
		h.commit(map[string][]byte{"a": nil, "c": []byte("3")})
		h.wantAbsent("a")
		h.wantValue("b", "2")
		h.wantValue("c", "3")
		h.commit(map[string][]byte{"never-there": nil}) // deleting nothing succeeds
		h.wantList("", map[string]string{"b": "2", "c": "3"})
	}},
	{"EmptyCommit", func(h *harness) {
		h.commit(map[string][]byte{})
		h.commit(nil)
		h.wantList("", map[string]string{})
	}},
	{"ListPrefix", func(h *harness) {
		h.commit(map[string][]byte{
			"host/a":     []byte("1"),
			"host/b":     []byte("2"),
			"host/b/sub": []byte("3"),
			"hostile":    []byte("4"),
			"set/x":      []byte("5"),
			"héte/ü":     []byte("6"),
		})
		h.wantList("host/", map[string]string{"host/a": "1", "host/b": "2", "host/b/sub": "3"})
		h.wantList("host", map[string]string{"host/a": "1", "host/b": "2", "host/b/sub": "3", "hostile": "4"})
		h.wantList("host/b", map[string]string{"host/b": "2", "host/b/sub": "3"})
		h.wantList("héte/", map[string]string{"héte/ü": "6"})
		h.wantList("zzz", map[string]string{})
		if n := len(h.list("")); n != 6 {
			h.t.Fatalf("List(\"\") has %d keys, want 6", n)
		}
	}},
	{"ValuesAreCopies", func(h *harness) {
		h.commit(map[string][]byte{"k": []byte("first"), "l": []byte("list")})
		v := h.get("k")
		l := h.list("l")["l"]
		h.commit(map[string][]byte{"k": []byte("other"), "l": []byte("LIST")})
		for i := range 20 { // churn the store under the old slices
			h.commit(map[string][]byte{fmt.Sprintf("churn/%d", i): bytes.Repeat([]byte{'x'}, 4096)})
		}
		if string(v) != "first" || string(l) != "list" {
			h.t.Fatalf("values returned earlier changed under the caller: %q, %q", v, l)
		}
		v[0] = 'X' // the caller owns what it got
		h.wantValue("k", "other")
		in := []byte("mine")
		h.commit(map[string][]byte{"m": in})
		in[0] = 'X'
		h.wantValue("m", "mine")
	}},
	{"CommitIsAtomicToReaders", func(h *harness) {
		// A writer moves two keys together; a reader must never see them
		// apart.
		h.commit(map[string][]byte{"pair/a": []byte("0"), "pair/b": []byte("0")})
		const rounds = 40
		var wg sync.WaitGroup
		errc := make(chan error, 1)
		done := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := h.s.List(h.ctx, "pair/")
				if err != nil {
					errc <- err
					return
				}
				if !bytes.Equal(m["pair/a"], m["pair/b"]) {
					errc <- fmt.Errorf("a reader saw pair/a=%q pair/b=%q: a commit was seen half done", m["pair/a"], m["pair/b"])
					return
				}
				select {
				case <-done:
					return
				default:
				}
			}
		}()
		for i := 1; i <= rounds; i++ {
			v := []byte(fmt.Sprint(i))
			if err := h.s.Commit(h.ctx, map[string][]byte{"pair/a": v, "pair/b": v}); err != nil {
				close(done)
				wg.Wait()
				h.t.Fatalf("Commit: %v", err)
			}
		}
		close(done)
		wg.Wait()
		select {
		case err := <-errc:
			h.t.Fatal(err)
		default:
		}
		h.wantValue("pair/a", fmt.Sprint(rounds))
	}},
	{"DurableAcrossReopen", func(h *harness) {
		h.commit(map[string][]byte{"host/a": []byte("synced"), "host/b": []byte("cooling")})
		h.commit(map[string][]byte{"host/b": nil, "step": []byte("wave-2")})
		h.reopen()
		h.wantList("", map[string]string{"host/a": "synced", "step": "wave-2"})
		h.commit(map[string][]byte{"host/c": []byte("after")})
		h.reopen()
		h.wantList("", map[string]string{"host/a": "synced", "step": "wave-2", "host/c": "after"})
	}},
	{"LargeValue", func(h *harness) {
		big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16) // 64 KiB
		h.commit(map[string][]byte{"big": big})
		if got := h.get("big"); !bytes.Equal(got, big) {
			h.t.Fatalf("a 64 KiB value came back as %d bytes", len(got))
		}
	}},
}
