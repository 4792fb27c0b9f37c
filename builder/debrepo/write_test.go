package debrepo_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ingotfleet/ingot/builder/debrepo"
	"github.com/ingotfleet/ingot/builder/debrepo/debrepotest"
	"github.com/ingotfleet/ingot/internal/testenv"
)

// TestLocalRepo writes a repository of the sample packages signed with
// a new key, and reads it back as any repository is read: the InRelease
// verifies with the public key (by ingot and by gpgv), every package is
// listed with the sha256 of its pool file, arch all packages in the
// amd64 index, and the same packages written again give the same bytes.
func TestLocalRepo(t *testing.T) {
	testenv.RequireTool(t, "gpgv", "gpgv")
	testenv.RequireTool(t, "gpg", "gnupg")
	debs := sampleDebs(t)
	secret, public, err := debrepo.NewRepoKey("ingot test repo", "repo@ingot.invalid")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	secretFile, pubFile := filepath.Join(dir, "repo.key"), filepath.Join(dir, "repo.asc")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubFile, public, 0o644); err != nil {
		t.Fatal(err)
	}
	key, err := debrepo.LoadSigningKey(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	// Dated before the key was made, as packages built with an old
	// SOURCE_DATE_EPOCH are: the signature still verifies.
	r := &debrepo.LocalRepo{Dir: filepath.Join(dir, "repo"), Date: time.Unix(1704067200, 0)}
	if err := r.Add(debs...); err != nil {
		t.Fatal(err)
	}
	if err := r.Write(key); err != nil {
		t.Fatal(err)
	}
	inRelease := filepath.Join(r.Dir, "dists/local/InRelease")
	first := readFile(t, inRelease)
	if !bytes.Contains(first, []byte("\nDate: Mon, 01 Jan 2024 00:00:00 UTC\n")) {
		t.Errorf("InRelease does not carry the repository's date:\n%s", first)
	}

	kr, err := debrepo.LoadKeyring(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	c := &debrepo.Client{}
	idx, err := c.FetchIndex(context.Background(), []debrepo.Repo{{URL: "file://" + r.Dir, Suites: []string{"local"}, Components: []string{"main"}, Keyring: kr}}, []string{"amd64"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range idx.Packages {
		names = append(names, p.Name)
		data := readFile(t, filepath.Join(r.Dir, p.Filename))
		if int64(len(data)) != p.Size {
			t.Errorf("%s: size %d, index says %d", p.Filename, len(data), p.Size)
		}
	}
	slices.Sort(names)
	if want := []string{"hello", "hello-doc", "libhello"}; !slices.Equal(names, want) {
		t.Errorf("index lists %v, want %v", names, want)
	}
	// gpgv, as apt verifies, with the public key dearmored.
	bin := filepath.Join(dir, "repo.gpg")
	if out, err := exec.Command("gpg", "--batch", "--yes", "--dearmor", "-o", bin, pubFile).CombinedOutput(); err != nil {
		t.Fatalf("gpg --dearmor: %v\n%s", err, out)
	}
	if out, err := exec.Command("gpgv", "--keyring", bin, inRelease).CombinedOutput(); err != nil {
		t.Fatalf("gpgv rejects the InRelease: %v\n%s", err, out)
	}
	// A tampered index is refused.
	pk := filepath.Join(r.Dir, "dists/local/main/binary-amd64/Packages")
	good := readFile(t, pk)
	if err := os.WriteFile(pk, bytes.Replace(good, []byte("Version: 1.0-1"), []byte("Version: 6.6-6"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(pk + ".gz"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FetchIndex(context.Background(), []debrepo.Repo{{URL: "file://" + r.Dir, Suites: []string{"local"}, Components: []string{"main"}, Keyring: kr}}, []string{"amd64"}); err == nil {
		t.Error("a changed Packages index was accepted")
	}
	// Written again: the same repository, byte for byte.
	if err := r.Write(key); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, pk), good) {
		t.Error("writing the same packages again changed the index")
	}
	if again := readFile(t, inRelease); !bytes.Equal(again, first) {
		t.Errorf("writing the same packages again changed InRelease:\n%s\n%s", first, again)
	}
	// The same name and version with other content is refused.
	other := debrepotest.BuildDeb(t, t.TempDir(), debrepotest.Deb{Package: "hello", Version: "1.0-1", Files: map[string]string{"usr/bin/hello": "other"}})
	if err := r.Add(other); err == nil || !strings.Contains(err.Error(), "other content") {
		t.Errorf("adding another hello 1.0-1: %v", err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestLocalRepoDate: without a date, the Release is dated by the newest
// time stamp in the packages' ar headers (SOURCE_DATE_EPOCH for dpkg-deb).
func TestLocalRepoDate(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1600000000")
	deb := debrepotest.BuildDeb(t, t.TempDir(), debrepotest.Deb{Package: "dated", Version: "1", Files: map[string]string{"usr/share/dated": "x"}})
	secret, _, err := debrepo.NewRepoKey("ingot test repo", "")
	if err != nil {
		t.Fatal(err)
	}
	kf := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(kf, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := debrepo.LoadSigningKey(kf)
	if err != nil {
		t.Fatal(err)
	}
	r := &debrepo.LocalRepo{Dir: t.TempDir()}
	if err := r.Add(deb); err != nil {
		t.Fatal(err)
	}
	if err := r.Write(key); err != nil {
		t.Fatal(err)
	}
	if rel := readFile(t, filepath.Join(r.Dir, "dists/local/Release")); !bytes.Contains(rel, []byte("\nDate: Sun, 13 Sep 2020 12:26:40 UTC\n")) {
		t.Errorf("Release not dated by the package:\n%s", rel)
	}
}
