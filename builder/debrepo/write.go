package debrepo

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/ingotfleet/ingot/builder/deb"
	"github.com/ingotfleet/ingot/internal/atomicfile"
)

// This file writes a repository: the flat pool of .deb files ingot
// keeps, the Packages index of every architecture made from them (as
// dpkg-scanpackages does), a Release file with their sha256 hashes, and
// InRelease, the Release clear-signed with an OpenPGP key. A spec reads
// it like any repository (a file:// URL, and the public key as keyring).

// LocalRepo is a repository ingot writes in Dir: one suite, one
// component, pool/COMPONENT/ holding the packages.
type LocalRepo struct {
	Dir           string
	Suite         string   // default "local"
	Component     string   // default "main"
	Architectures []string // default those of the packages, else amd64
	// Date is the Release date; zero: the newest time stamp in the
	// packages (dpkg-deb writes SOURCE_DATE_EPOCH there), so that the
	// same packages give the same repository.
	Date time.Time
}

func (r *LocalRepo) defaults() {
	if r.Suite == "" {
		r.Suite = "local"
	}
	if r.Component == "" {
		r.Component = "main"
	}
}

// Pool is the directory the packages are in.
func (r *LocalRepo) Pool() string {
	r.defaults()
	return filepath.Join(r.Dir, "pool", r.Component)
}

// Add copies the .deb files into the pool (a file of the same name
// must have the same content).
func (r *LocalRepo) Add(debs ...string) error {
	if err := os.MkdirAll(r.Pool(), 0o755); err != nil {
		return err
	}
	for _, d := range debs {
		data, err := os.ReadFile(d)
		if err != nil {
			return err
		}
		c, err := readControl(data, d)
		if err != nil {
			return err
		}
		name := strings.ReplaceAll(c.Package()+"_"+c.Get("Version")+"_"+c.Get("Architecture"), ":", "%3a") + ".deb"
		dst := filepath.Join(r.Pool(), name)
		if old, err := os.ReadFile(dst); err == nil {
			if !bytes.Equal(old, data) {
				return fmt.Errorf("%s: the repository already has %s with other content (a package is not replaced under the same version)", d, name)
			}
			continue
		}
		if err := atomicfile.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func readControl(data []byte, name string) (*deb.Control, error) {
	rd, err := deb.NewReader(bytes.NewReader(data), name)
	if err != nil {
		return nil, err
	}
	return rd.Control()
}

// Write makes the indices of every package in the pool and signs the
// Release with key (an entity with its private key).
func (r *LocalRepo) Write(key *openpgp.Entity) error {
	r.defaults()
	if key == nil || key.PrivateKey == nil {
		return errors.New("local repository: no secret key to sign it with")
	}
	entries, archs, newest, err := r.scan()
	if err != nil {
		return err
	}
	date := r.Date
	if date.IsZero() {
		date = time.Unix(newest, 0)
	}
	dists := filepath.Join(r.Dir, "dists", r.Suite)
	var hashes []string
	for _, a := range archs {
		var idx bytes.Buffer
		for _, e := range entries {
			if e.arch == a || e.arch == "all" {
				if idx.Len() > 0 {
					idx.WriteByte('\n')
				}
				idx.Write(e.text)
			}
		}
		h, err := r.writeIndex(dists, a, idx.Bytes())
		if err != nil {
			return err
		}
		hashes = append(hashes, h...)
	}
	return r.writeRelease(dists, archs, hashes, date, key)
}

// poolEntry is one package's paragraph of a Packages index.
type poolEntry struct {
	arch string
	text []byte
}

// scan reads every .deb of the pool, in name order: its index paragraph,
// the architectures to index and the newest ar time stamp.
func (r *LocalRepo) scan() ([]poolEntry, []string, int64, error) {
	var names []string
	err := filepath.WalkDir(r.Pool(), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasSuffix(p, ".deb") {
			names = append(names, p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, 0, err
	}
	slices.Sort(names)
	var entries []poolEntry
	archs := slices.Clone(r.Architectures)
	var newest int64
	for _, p := range names {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, 0, err
		}
		c, err := readControl(data, p)
		if err != nil {
			return nil, nil, 0, err
		}
		newest = max(newest, newestMember(data))
		para := &deb.Paragraph{Fields: slices.Clone(c.Fields)}
		rel, err := filepath.Rel(r.Dir, p)
		if err != nil {
			return nil, nil, 0, err
		}
		sum := sha256.Sum256(data)
		para.Set("Filename", filepath.ToSlash(rel))
		para.Set("Size", strconv.Itoa(len(data)))
		para.Set("SHA256", hex.EncodeToString(sum[:]))
		var b bytes.Buffer
		if _, err := para.WriteTo(&b); err != nil {
			return nil, nil, 0, err
		}
		a := c.Get("Architecture")
		entries = append(entries, poolEntry{a, b.Bytes()})
		if len(r.Architectures) == 0 && a != "all" && !slices.Contains(archs, a) {
			archs = append(archs, a)
		}
	}
	if len(archs) == 0 {
		archs = []string{"amd64"}
	}
	slices.Sort(archs)
	return entries, archs, newest, nil
}

// writeIndex writes Packages and Packages.gz of one architecture and
// returns their Release lines.
func (r *LocalRepo) writeIndex(dists, arch string, idx []byte) ([]string, error) {
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // no name, no time: reproducible
	if _, err := zw.Write(idx); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	var lines []string
	for _, f := range []struct {
		name string
		data []byte
	}{{"Packages", idx}, {"Packages.gz", gz.Bytes()}} {
		rel := path.Join(r.Component, "binary-"+arch, f.name)
		if err := os.MkdirAll(filepath.Join(dists, filepath.Dir(rel)), 0o755); err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(filepath.Join(dists, rel), f.data, 0o644); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(f.data)
		lines = append(lines, fmt.Sprintf(" %s %d %s", hex.EncodeToString(sum[:]), len(f.data), rel))
	}
	return lines, nil
}

// writeRelease writes Release and InRelease, signed by key.
func (r *LocalRepo) writeRelease(dists string, archs, hashes []string, date time.Time, key *openpgp.Entity) error {
	rel := &deb.Paragraph{}
	rel.Set("Origin", "ingot")
	rel.Set("Label", "ingot")
	rel.Set("Suite", r.Suite)
	rel.Set("Codename", r.Suite)
	rel.Set("Date", date.UTC().Format("Mon, 02 Jan 2006 15:04:05 UTC"))
	rel.Set("Architectures", strings.Join(archs, " "))
	rel.Set("Components", r.Component)
	rel.Set("Description", "packages built by ingot pkg build")
	rel.Set("SHA256", "\n"+strings.Join(hashes, "\n"))
	var rb bytes.Buffer
	if _, err := rel.WriteTo(&rb); err != nil {
		return err
	}
	// Ed25519 signatures are deterministic; without the random salt
	// notation the same Release signs to the same InRelease. The
	// signature is dated the Release's date, or the key's creation when
	// that is later (gpgv refuses a signature older than its key): both
	// fixed, so the signature is too.
	noSalt := false
	sigTime := date
	if ct := key.PrimaryKey.CreationTime; ct.After(sigTime) {
		sigTime = ct
	}
	var in bytes.Buffer
	w, err := clearsign.Encode(&in, key.PrivateKey, &packet.Config{Time: func() time.Time { return sigTime }, NonDeterministicSignaturesViaNotation: &noSalt})
	if err != nil {
		return fmt.Errorf("signing %s: %w", filepath.Join(dists, "InRelease"), err)
	}
	if _, err := w.Write(rb.Bytes()); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("signing %s: %w", filepath.Join(dists, "InRelease"), err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dists, "Release"), rb.Bytes(), 0o644); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dists, "InRelease"), in.Bytes(), 0o644)
}

// newestMember is the newest modification time in the ar headers of a
// .deb (0 when it cannot tell).
func newestMember(data []byte) int64 {
	var newest int64
	if !bytes.HasPrefix(data, []byte("!<arch>\n")) {
		return 0
	}
	off := 8
	for off+60 <= len(data) {
		h := data[off : off+60]
		t, _ := strconv.ParseInt(strings.TrimSpace(string(h[16:28])), 10, 64)
		n, err := strconv.ParseInt(strings.TrimSpace(string(h[48:58])), 10, 64)
		if err != nil || n < 0 {
			break
		}
		newest = max(newest, t)
		off += 60 + int(n) + int(n%2)
	}
	return newest
}

// NewRepoKey makes an ed25519 OpenPGP key that signs repositories and
// returns the armored secret key and the armored public key (what a
// spec names as the repository's keyring).
func NewRepoKey(name, email string) (secret, public []byte, err error) {
	e, err := openpgp.NewEntity(name, "ingot repository signing key", email, &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		return nil, nil, err
	}
	var s, p bytes.Buffer
	for _, x := range []struct {
		w     *bytes.Buffer
		block string
		fn    func(io.Writer) error
	}{
		{&s, openpgp.PrivateKeyType, func(w io.Writer) error { return e.SerializePrivate(w, nil) }},
		{&p, openpgp.PublicKeyType, e.Serialize},
	} {
		aw, err := armor.Encode(x.w, x.block, nil)
		if err != nil {
			return nil, nil, err
		}
		if err := x.fn(aw); err != nil {
			return nil, nil, err
		}
		if err := aw.Close(); err != nil {
			return nil, nil, err
		}
		x.w.WriteByte('\n')
	}
	return s.Bytes(), p.Bytes(), nil
}

// LoadSigningKey reads an OpenPGP secret key (armored or binary, as
// gpg --export-secret-keys writes it, not protected by a passphrase).
func LoadSigningKey(file string) (*openpgp.Entity, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var el openpgp.EntityList
	if bytes.Contains(data, []byte("-----BEGIN PGP")) {
		el, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		el, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for _, e := range el {
		if e.PrivateKey != nil {
			if e.PrivateKey.Encrypted {
				return nil, fmt.Errorf("%s: the secret key is protected by a passphrase", file)
			}
			return e, nil
		}
	}
	return nil, fmt.Errorf("%s: no secret key in it", file)
}
