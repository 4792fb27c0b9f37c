package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestWriteFileReplaces(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "new" {
		t.Fatalf("content %q, %v", b, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

func TestAbortLeavesTarget(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Create(p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte("half"))
	f.Abort()
	f.Abort() // idempotent
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Fatalf("target changed to %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	if err := f.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
}

// A device node must be written through, never renamed over.
func TestKeepsDevices(t *testing.T) {
	if err := WriteFile(os.DevNull, []byte("discarded"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("%s is no longer a character device: %v", os.DevNull, fi.Mode())
	}
}

func TestRefusesDirectory(t *testing.T) {
	if _, err := Create(t.TempDir(), 0o644); err == nil {
		t.Fatal("Create on a directory succeeded")
	}
}

func TestWritesThroughFifo(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := exec.Command("mkfifo", fifo).Run(); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	got := make(chan []byte)
	go func() {
		data, _ := os.ReadFile(fifo)
		got <- data
	}()
	if err := WriteFile(fifo, []byte("lock\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data := <-got; string(data) != "lock\n" {
		t.Errorf("read %q from the fifo", data)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the fifo was replaced: %v %v", fi.Mode(), err)
	}
	if err := WriteFile(dir, []byte("x"), 0o644); err == nil {
		t.Error("writing over a directory succeeded")
	}
	regular := filepath.Join(dir, "spec.lock")
	if err := WriteFile(regular, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(regular); string(data) != "a" {
		t.Errorf("regular file holds %q", data)
	}
}

// TestWriteNew: a key is created whole with its mode, never over an
// existing file (the old one keeps its bytes), and leaves no temporary
// file behind either way.
func TestWriteNew(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k.key")
	if err := WriteNew(p, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 7 {
		t.Fatalf("after WriteNew: %v %v", fi, err)
	}
	err = WriteNew(p, []byte("other\n"), 0o600)
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("WriteNew over an existing file: err = %v, want one wrapping fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "secret\n" {
		t.Errorf("the existing key changed: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the key", len(ents))
	}
	if err := SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("SyncDir of a missing directory succeeded")
	}
}

// TestWriteFill: Write and WriteVolatile take their bytes from fill; a
// fill that fails leaves the target and no temporary file.
func TestWriteFill(t *testing.T) {
	for _, write := range []func(string, os.FileMode, func(io.Writer) error) error{Write, WriteVolatile} {
		dir := t.TempDir()
		p := filepath.Join(dir, "out")
		if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		if err := write(p, 0o600, func(w io.Writer) error {
			if _, err := io.WriteString(w, "half"); err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			t.Fatalf("a failing fill: got %v", err)
		}
		if b, _ := os.ReadFile(p); string(b) != "old" {
			t.Fatalf("after a failed fill the target holds %q", b)
		}
		if err := write(p, 0o600, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		fi, _ := os.Stat(p)
		if err != nil || string(b) != "new" || fi.Mode().Perm() != 0o600 {
			t.Fatalf("content %q, mode %v, %v", b, fi.Mode().Perm(), err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("temporary files left: %v", ents)
		}
	}
}
