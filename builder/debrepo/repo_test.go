package debrepo_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/builder/debrepo"
	"github.com/ingotfleet/ingot/builder/debrepo/debrepotest"
)

var (
	testDebsOnce sync.Once
	testDebs     []string
	testDebsDir  string
)

// sampleDebs builds a few real .deb files once per test binary.
func sampleDebs(t *testing.T) []string {
	t.Helper()
	testDebsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "debrepo-debs")
		if err != nil {
			t.Fatal(err)
		}
		testDebsDir = dir
		for _, d := range []debrepotest.Deb{
			{Package: "hello", Version: "1.0-1", Depends: "libhello (>= 1.0)", Files: map[string]string{"usr/bin/hello": "#!/bin/sh\necho hello\n"}},
			{Package: "libhello", Version: "1.2-1", Files: map[string]string{"usr/lib/libhello.so.1": "ELF"}},
			{Package: "hello-doc", Version: "1.0-1", Architecture: "all", Files: map[string]string{"usr/share/doc/hello/README": "hi"}},
		} {
			testDebs = append(testDebs, debrepotest.BuildDeb(t, dir, d))
		}
	})
	if len(testDebs) != 3 {
		t.Fatal("building sample .debs failed earlier")
	}
	return testDebs
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testDebsDir != "" {
		os.RemoveAll(testDebsDir)
	}
	os.Exit(code)
}

func loadKey(t *testing.T, path string) *debrepo.Keyring {
	t.Helper()
	k, err := debrepo.LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestFetchIndexLocalRepo(t *testing.T) {
	debs := sampleDebs(t)
	key := debrepotest.NewKey(t, "ingot test")
	for _, tc := range []struct {
		name    string
		armored bool
		http    bool
		byHash  bool
	}{
		{"file binary keyring", false, false, false},
		{"http armored keyring", true, true, false},
		{"http by-hash", false, true, true},
		{"Release.gpg instead of InRelease", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := debrepotest.NewRepo(t, t.TempDir(), debrepotest.Options{Suite: "testing", Key: key, AcquireByHash: tc.byHash,
				DetachedOnly: strings.Contains(tc.name, "Release.gpg")}, debs...)
			if tc.http {
				repo.Serve(t)
			}
			kr := key.Keyring
			if tc.armored {
				kr = key.Armored
			}
			c := &debrepo.Client{}
			idx, err := c.FetchIndex(context.Background(), []debrepo.Repo{{URL: repo.URL, Suites: []string{"testing"}, Components: []string{"main"}, Keyring: loadKey(t, kr)}}, []string{"amd64"})
			if err != nil {
				t.Fatal(err)
			}
			if len(idx.Suites) != 1 || idx.Suites[0].Release.Date != debrepotest.DefaultDate {
				t.Fatalf("suites: %+v", idx.Suites)
			}
			if !strings.EqualFold(idx.Suites[0].Signer.KeyID, key.Fingerprint[24:]) {
				t.Errorf("signer %s, key %s", idx.Suites[0].Signer.KeyID, key.Fingerprint)
			}
			got := map[string]*debrepo.Package{}
			for _, p := range idx.Packages {
				got[p.Name] = p
			}
			if len(got) != 3 || got["hello"].Depends != "libhello (>= 1.0)" || got["hello-doc"].Architecture != "all" || got["libhello"].Version != "1.2-1" {
				t.Fatalf("packages: %v", got)
			}
			fi, err := os.Stat(filepath.Join(repo.Dir, got["hello"].Filename))
			if err != nil || fi.Size() != got["hello"].Size {
				t.Fatalf("Filename/Size do not name the pool file: %v", err)
			}
		})
	}
}

// TestRefusesTampering checks that every way an index can be wrong is
// refused with an error naming the file.
func TestRefusesTampering(t *testing.T) {
	debs := sampleDebs(t)
	key := debrepotest.NewKey(t, "ingot test")
	other := debrepotest.NewKey(t, "someone else")
	now := time.Now().Add(time.Minute) // after the signatures the test makes
	packagesGz := "dists/stable/main/binary-amd64/Packages.gz"
	tests := []struct {
		name    string
		opts    debrepotest.Options
		tamper  func(t *testing.T, r *debrepotest.Repo)
		wantErr error
		wantIn  string // file named in the error
	}{
		{"unsigned", debrepotest.Options{}, func(t *testing.T, r *debrepotest.Repo) {
			copyFile(t, filepath.Join(r.Dir, "dists/stable/Release"), r.InRelease())
		}, debrepo.ErrUnsigned, "dists/stable/InRelease"},
		{"signed by another key", debrepotest.Options{}, func(t *testing.T, r *debrepotest.Repo) {
			r.Resign(t, other)
		}, debrepo.ErrUnknownKey, "dists/stable/InRelease"},
		{"tampered InRelease", debrepotest.Options{}, func(t *testing.T, r *debrepotest.Repo) {
			replaceIn(t, r.InRelease(), "Suite: stable", "Suite: stabIe")
		}, debrepo.ErrBadSignature, "dists/stable/InRelease"},
		{"data after signature", debrepotest.Options{}, func(t *testing.T, r *debrepotest.Repo) {
			appendTo(t, r.InRelease(), "Origin: evil\n")
		}, debrepo.ErrBadSignature, "dists/stable/InRelease"},
		{"tampered Packages", debrepotest.Options{}, func(t *testing.T, r *debrepotest.Repo) {
			debrepotest.WriteIndex(t, filepath.Join(r.Dir, "dists/stable"), "main/binary-amd64/Packages", []byte("Package: evil\n"))
		}, debrepo.ErrHashMismatch, packagesGz},
		{"expired", debrepotest.Options{ValidUntil: now.Add(-time.Minute)}, nil, debrepo.ErrExpired, "dists/stable/InRelease"},
		{"tampered Packages, by-hash copy missing", debrepotest.Options{AcquireByHash: true}, func(t *testing.T, r *debrepotest.Repo) {
			os.RemoveAll(filepath.Join(r.Dir, "dists/stable/main/binary-amd64/by-hash"))
			debrepotest.WriteIndex(t, filepath.Join(r.Dir, "dists/stable"), "main/binary-amd64/Packages", []byte("Package: evil\n"))
		}, debrepo.ErrHashMismatch, "mirror sync in progress?"},
		{"Release without Release.gpg", debrepotest.Options{DetachedOnly: true}, func(t *testing.T, r *debrepotest.Repo) {
			os.Remove(filepath.Join(r.Dir, "dists/stable/Release.gpg"))
		}, debrepo.ErrUnsigned, "dists/stable/Release"},
		{"Release.gpg by another key", debrepotest.Options{DetachedOnly: true}, func(t *testing.T, r *debrepotest.Repo) {
			other.DetachSign(t, filepath.Join(r.Dir, "dists/stable/Release"), filepath.Join(r.Dir, "dists/stable/Release.gpg"))
		}, debrepo.ErrUnknownKey, "dists/stable/Release"},
		{"tampered Release", debrepotest.Options{DetachedOnly: true}, func(t *testing.T, r *debrepotest.Repo) {
			replaceIn(t, filepath.Join(r.Dir, "dists/stable/Release"), "Suite: stable", "Suite: stabIe")
		}, debrepo.ErrBadSignature, "dists/stable/Release"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Key = key
			repo := debrepotest.NewRepo(t, t.TempDir(), tc.opts, debs...)
			if tc.tamper != nil {
				tc.tamper(t, repo)
			}
			c := &debrepo.Client{Now: func() time.Time { return now }, SyncDelay: time.Millisecond}
			_, err := c.FetchIndex(context.Background(), []debrepo.Repo{{URL: repo.URL, Suites: []string{"stable"}, Components: []string{"main"}, Keyring: loadKey(t, key.Keyring)}}, []string{"amd64"})
			if err == nil {
				t.Fatal("tampered repository accepted")
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v is not %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantIn) {
				t.Errorf("error %q does not name %s", err, tc.wantIn)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func replaceIn(t *testing.T, path, old, new string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, bytes.Replace(data, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendTo(t *testing.T, path, s string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(s)
	f.Close()
}

// TestInReleaseSignedByTwoKeys: Debian signs InRelease with several keys;
// one good signature by a key of the keyring is enough, even when the
// other signature's key has expired.
func TestInReleaseSignedByTwoKeys(t *testing.T) {
	debs := sampleDebs(t)
	expiring := debrepotest.NewKey(t, "old archive key")
	expiring = expiring.NewKeyInHome(t, "expiring archive key", "1d")
	current := expiring.NewKeyInHome(t, "current archive key", "never")
	repo := debrepotest.NewRepo(t, t.TempDir(), debrepotest.Options{Key: current}, debs...)
	debrepotest.ClearSignBy(t, filepath.Join(repo.Dir, "dists/stable/Release"), repo.InRelease(), expiring, current)
	later := time.Now().Add(48 * time.Hour) // the first key has expired by then
	for _, tc := range []struct {
		name    string
		keyring []string
		wantErr error
	}{
		{"both keys, first expired", []string{expiring.Keyring, current.Keyring}, nil},
		{"only the current key", []string{current.Keyring}, nil},
		{"only the expired key", []string{expiring.Keyring}, debrepo.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := debrepo.LoadKeyring(tc.keyring...)
			if err != nil {
				t.Fatal(err)
			}
			c := &debrepo.Client{Now: func() time.Time { return later }}
			idx, err := c.FetchIndex(context.Background(), []debrepo.Repo{{URL: repo.URL, Suites: []string{"stable"}, Components: []string{"main"}, Keyring: kr}}, []string{"amd64"})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := idx.Suites[0].Signer.Name; !strings.HasPrefix(got, "current archive key") {
				t.Errorf("verified by %q", got)
			}
		})
	}
}
