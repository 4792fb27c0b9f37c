// Package signing signs image manifests with ed25519 and checks those
// signatures against a set of trusted keys.
//
// What is signed is a Statement about an image: its digest (the sha256
// of its canonical manifest), the name:tag it is published as, and a
// generation that grows with every image published under that name (by
// default the signing time), framed so a signature can never be mistaken
// for one over anything else. The generation is what lets an agent
// refuse an older image a hostile store offers in place of a newer one.
// A PublicKey file is one line "ingot-ed25519-public BASE64 [comment]"; a
// PrivateKey file is "ingot-ed25519-private BASE64 [comment]" (the
// 32-byte seed). A signature file holds one line per signer and name:
// "ingot-signature-v2 KEYID NAME:TAG GENERATION BASE64", KEYID being the
// first 8 bytes of the sha256 of the public key, in hex. Lines of the
// first format ("ingot-signature-v1 KEYID BASE64", the digest alone) are
// refused: they say nothing of the image's age.
package signing

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store"
)

const (
	publicTag    = "ingot-ed25519-public"
	privateTag   = "ingot-ed25519-private"
	signatureTag = "ingot-signature-v2"
	// oldSignatureTag is the first format, digest only: refused.
	oldSignatureTag = "ingot-signature-v1"
)

// ErrUntrusted is wrapped when no signature of an image verifies with a
// trusted key.
var ErrUntrusted = errors.New("signing: image not signed by a trusted key")

// ErrOldFormat is wrapped when an image's only signatures are of the
// first format, which covers no name and no generation.
var ErrOldFormat = errors.New("signing: signature of the v1 format (no name, no generation)")

// Statement is what a signature says of an image besides its digest: the
// name:tag it is published as and its generation under that name (which
// only grows; by default the signing time in nanoseconds since 1970).
type Statement struct {
	Ref        string `json:"ref"`
	Generation uint64 `json:"generation"`
}

// Check validates a statement: a ref store.ParseRef takes and a
// generation above zero.
func (st Statement) Check() error {
	if _, _, err := store.ParseRef(st.Ref); err != nil {
		return err
	}
	if st.Generation == 0 {
		return errors.New("generation 0: a generation is a number from 1 up")
	}
	return nil
}

// Signed is a statement whose signature verified, and the key that made it.
type Signed struct {
	Statement
	Key PublicKey
}

// PublicKey is an ed25519 public key with a comment (its owner, say).
type PublicKey struct {
	Key     ed25519.PublicKey
	Comment string
}

// ID is the key's short identifier.
func (k PublicKey) ID() string {
	s := sha256.Sum256(k.Key)
	return hex.EncodeToString(s[:8])
}

// String is the key file line.
func (k PublicKey) String() string {
	s := publicTag + " " + base64.StdEncoding.EncodeToString(k.Key)
	if k.Comment != "" {
		s += " " + k.Comment
	}
	return s
}

// PrivateKey is an ed25519 private key with a comment.
type PrivateKey struct {
	Key     ed25519.PrivateKey
	Comment string
}

// Public returns the matching public key.
func (k PrivateKey) Public() PublicKey {
	return PublicKey{Key: k.Key.Public().(ed25519.PublicKey), Comment: k.Comment}
}

// String is the key file line.
func (k PrivateKey) String() string {
	s := privateTag + " " + base64.StdEncoding.EncodeToString(k.Key.Seed())
	if k.Comment != "" {
		s += " " + k.Comment
	}
	return s
}

// Generate makes a new key pair.
func Generate(comment string) (PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return PrivateKey{}, err
	}
	return PrivateKey{Key: priv, Comment: comment}, nil
}

func splitLine(line, tag string) ([]byte, string, error) {
	fields := strings.SplitN(strings.TrimSpace(line), " ", 3)
	if len(fields) < 2 || fields[0] != tag {
		return nil, "", fmt.Errorf("not an %s line", tag)
	}
	b, err := base64.StdEncoding.DecodeString(fields[1])
	if err != nil {
		return nil, "", fmt.Errorf("bad base64: %w", err)
	}
	c := ""
	if len(fields) == 3 {
		c = strings.TrimSpace(fields[2])
	}
	return b, c, nil
}

// ParsePublicKey parses a public key line.
func ParsePublicKey(line string) (PublicKey, error) {
	b, c, err := splitLine(line, publicTag)
	if err != nil {
		return PublicKey{}, err
	}
	if len(b) != ed25519.PublicKeySize {
		return PublicKey{}, fmt.Errorf("public key is %d bytes, want %d", len(b), ed25519.PublicKeySize)
	}
	return PublicKey{Key: ed25519.PublicKey(b), Comment: c}, nil
}

// ParsePrivateKey parses a private key line.
func ParsePrivateKey(line string) (PrivateKey, error) {
	b, c, err := splitLine(line, privateTag)
	if err != nil {
		return PrivateKey{}, err
	}
	if len(b) != ed25519.SeedSize {
		return PrivateKey{}, fmt.Errorf("private key seed is %d bytes, want %d", len(b), ed25519.SeedSize)
	}
	return PrivateKey{Key: ed25519.NewKeyFromSeed(b), Comment: c}, nil
}

// LoadPrivateKey reads a private key file.
func LoadPrivateKey(name string) (PrivateKey, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("reading private key: %w", err)
	}
	k, err := ParsePrivateKey(string(b))
	if err != nil {
		return PrivateKey{}, fmt.Errorf("%s: %w", name, err)
	}
	return k, nil
}

// LoadPublicKeys reads public key files: each holds one or more key lines;
// blank lines and lines starting with "#" are skipped.
func LoadPublicKeys(names ...string) ([]PublicKey, error) {
	var keys []PublicKey
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("reading trusted keys: %w", err)
		}
		ks, err := ParsePublicKeys(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		keys = append(keys, ks...)
	}
	return keys, nil
}

// ParsePublicKeys parses a file of public key lines.
func ParsePublicKeys(b []byte) ([]PublicKey, error) {
	var keys []PublicKey
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := ParsePublicKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		keys = append(keys, k)
	}
	return keys, sc.Err()
}

func message(d images.Digest, st Statement) []byte {
	return []byte("ingot image signature v2\nsha256:" + d.String() + "\nref:" + st.Ref +
		"\ngeneration:" + strconv.FormatUint(st.Generation, 10) + "\n")
}

// Sign returns the signature line of key over image d published as st.
// It panics on a statement that does not Check (a caller's bug).
func Sign(key PrivateKey, d images.Digest, st Statement) string {
	if err := st.Check(); err != nil {
		panic("signing: " + err.Error())
	}
	sig := ed25519.Sign(key.Key, message(d, st))
	return signatureTag + " " + key.Public().ID() + " " + st.Ref + " " + strconv.FormatUint(st.Generation, 10) + " " +
		base64.StdEncoding.EncodeToString(sig) + "\n"
}

// AddSignature merges a new signature line into an existing signature
// file, replacing an older line by the same key for the same name:tag,
// and any line of the first format by that key.
func AddSignature(existing []byte, line string) []byte {
	nf := strings.Fields(line)
	var out bytes.Buffer
	for _, l := range strings.Split(string(existing), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 ||
			(len(f) >= 3 && f[0] == signatureTag && f[1] == nf[1] && f[2] == nf[2]) ||
			(len(f) >= 2 && f[0] == oldSignatureTag && f[1] == nf[1]) {
			continue
		}
		out.WriteString(l + "\n")
	}
	out.WriteString(line)
	return out.Bytes()
}

// parseGeneration reads a generation as Sign writes it: decimal, no sign,
// no leading zero, above zero.
func parseGeneration(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n > 0 && strconv.FormatUint(n, 10) == s
}

// Verify checks the signature file sigs of image d against the trusted
// keys and returns every statement a trusted key signed (at least one, or
// an error wrapping ErrUntrusted, or ErrOldFormat when the only lines
// are of the first format). Lines by other keys are ignored; a malformed
// line is an error.
func Verify(d images.Digest, sigs []byte, trusted []PublicKey) ([]Signed, error) {
	if len(trusted) == 0 {
		return nil, fmt.Errorf("%w: no trusted keys configured", ErrUntrusted)
	}
	var out []Signed
	seen, old := 0, 0
	for n, l := range strings.Split(string(sigs), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) == 3 && f[0] == oldSignatureTag {
			old++
			continue
		}
		if len(f) != 5 || f[0] != signatureTag {
			return nil, fmt.Errorf("signature of %s, line %d: not a signature line", d, n+1)
		}
		gen, ok := parseGeneration(f[3])
		st := Statement{Ref: f[2], Generation: gen}
		if !ok || st.Check() != nil {
			return nil, fmt.Errorf("signature of %s, line %d: bad name:tag or generation", d, n+1)
		}
		sig, err := base64.StdEncoding.DecodeString(f[4])
		if err != nil || len(sig) != ed25519.SignatureSize {
			return nil, fmt.Errorf("signature of %s, line %d: bad signature encoding", d, n+1)
		}
		seen++
		for _, k := range trusted {
			if k.ID() == f[1] && ed25519.Verify(k.Key, message(d, st), sig) {
				out = append(out, Signed{Statement: st, Key: k})
				break
			}
		}
	}
	switch {
	case len(out) > 0:
		return out, nil
	case seen == 0 && old > 0:
		return nil, fmt.Errorf("%w: %w: image %s has only signatures of the first format, which name no generation; sign it again with this ingot (ingot image sign)", ErrUntrusted, ErrOldFormat, d)
	case seen == 0:
		return nil, fmt.Errorf("%w: image %s is unsigned", ErrUntrusted, d)
	}
	return nil, fmt.Errorf("%w: none of the %d signatures of image %s verifies with a trusted key", ErrUntrusted, seen, d)
}
