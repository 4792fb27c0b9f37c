package debrepo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Errors that name why an InRelease file was refused; they are wrapped
// with the file's URL.
var (
	ErrUnsigned     = errors.New("not signed: no OpenPGP clear-signed message")
	ErrBadSignature = errors.New("bad signature")
	ErrUnknownKey   = errors.New("signed by no key of the keyring")
)

// Keyring is a set of public keys that may sign a repository.
type Keyring struct {
	Entities openpgp.EntityList
	Sources  []string // the files the keys came from, for messages
}

// LoadKeyring reads keyring files: binary OpenPGP keyrings (.gpg, as in
// /usr/share/keyrings) or armored ones (.asc). A directory contributes its
// *.gpg and *.asc files (as /etc/apt/trusted.gpg.d does).
func LoadKeyring(paths ...string) (*Keyring, error) {
	k := &Keyring{}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		files := []string{p}
		if fi.IsDir() {
			files = nil
			ents, err := os.ReadDir(p)
			if err != nil {
				return nil, fmt.Errorf("keyring: %w", err)
			}
			for _, e := range ents {
				if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".gpg") || strings.HasSuffix(n, ".asc")) {
					files = append(files, filepath.Join(p, n))
				}
			}
			slices.Sort(files)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("keyring: %w", err)
			}
			if err := k.Add(data, f); err != nil {
				return nil, err
			}
		}
	}
	if len(k.Entities) == 0 {
		return nil, fmt.Errorf("keyring %s: no public keys", strings.Join(paths, ", "))
	}
	return k, nil
}

// Add parses keys (binary or armored) from data; name is used in errors.
func (k *Keyring) Add(data []byte, name string) error {
	var (
		el  openpgp.EntityList
		err error
	)
	if bytes.Contains(data[:min(len(data), 4096)], []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
		el, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		el, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return fmt.Errorf("keyring %s: %w", name, err)
	}
	if len(el) == 0 {
		return fmt.Errorf("keyring %s: no public keys", name)
	}
	k.Entities = append(k.Entities, el...)
	k.Sources = append(k.Sources, name)
	return nil
}

// Signer describes the key that signed a verified file.
type Signer struct {
	KeyID string // 16 hex digits
	Name  string // the key's primary user id
}

// VerifyInRelease checks that data is a clear-signed message with a good
// signature by a key of k, valid at now, and returns the signed text (the
// Release paragraph). Data before or after the signed block is refused:
// only signed bytes are ever parsed. file names the InRelease in errors.
func VerifyInRelease(data []byte, k *Keyring, now time.Time, file string) ([]byte, Signer, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN PGP SIGNED MESSAGE-----")) {
		return nil, Signer{}, fmt.Errorf("%s: %w", file, ErrUnsigned)
	}
	block, rest := DecodeClearsigned(trimmed)
	if block == nil {
		return nil, Signer{}, fmt.Errorf("%s: %w (malformed clear-signed message)", file, ErrUnsigned)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, Signer{}, fmt.Errorf("%s: %w: data after the signature", file, ErrBadSignature)
	}
	if block.ArmoredSignature == nil {
		return nil, Signer{}, fmt.Errorf("%s: %w", file, ErrUnsigned)
	}
	sigs, err := io.ReadAll(block.ArmoredSignature.Body)
	if err != nil {
		return nil, Signer{}, fmt.Errorf("%s: %w: %v", file, ErrBadSignature, err)
	}
	signer, err := verifyAny(block.Bytes, sigs, k, now, file)
	if err != nil {
		return nil, Signer{}, err
	}
	return block.Plaintext, signer, nil
}

// verifyAny accepts signed if any one of the signature packets in sigs is
// a good signature by a key of k (a Debian InRelease carries several, and
// one of their keys may have expired), as apt does.
func verifyAny(signed, sigs []byte, k *Keyring, now time.Time, file string) (Signer, error) {
	cfg := &packet.Config{Time: func() time.Time { return now }}
	packets, err := splitPackets(sigs)
	if err != nil || len(packets) == 0 {
		return Signer{}, fmt.Errorf("%s: %w: unreadable signature packets", file, ErrBadSignature)
	}
	var bad error
	for _, p := range packets {
		sig, ent, err := openpgp.VerifyDetachedSignature(k.Entities, bytes.NewReader(signed), bytes.NewReader(p), cfg)
		if err == nil {
			return signerOf(sig, ent), nil
		}
		if !errors.Is(err, pgperrors.ErrUnknownIssuer) && bad == nil {
			bad = err
		}
	}
	if bad != nil {
		return Signer{}, fmt.Errorf("%s: %w: %v", file, ErrBadSignature, bad)
	}
	return Signer{}, fmt.Errorf("%s: %w (keyring %s)", file, ErrUnknownKey, strings.Join(k.Sources, ", "))
}

// splitPackets cuts a stream of OpenPGP packets (RFC 4880 §4.2) into one
// slice per packet.
func splitPackets(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if b[0]&0x80 == 0 {
			return nil, errors.New("not an OpenPGP packet")
		}
		var hdr, n int
		if b[0]&0x40 != 0 { // new format
			if len(b) < 2 {
				return nil, errors.New("short packet header")
			}
			switch l := int(b[1]); {
			case l < 192:
				hdr, n = 2, l
			case l < 224:
				if len(b) < 3 {
					return nil, errors.New("short packet header")
				}
				hdr, n = 3, (l-192)<<8+int(b[2])+192
			case l == 255:
				if len(b) < 6 {
					return nil, errors.New("short packet header")
				}
				hdr, n = 6, int(b[2])<<24|int(b[3])<<16|int(b[4])<<8|int(b[5])
			default:
				return nil, errors.New("partial-length packets are not signatures")
			}
		} else { // old format
			switch b[0] & 3 {
			case 0:
				if len(b) < 2 {
					return nil, errors.New("short packet header")
				}
				hdr, n = 2, int(b[1])
			case 1:
				if len(b) < 3 {
					return nil, errors.New("short packet header")
				}
				hdr, n = 3, int(b[1])<<8|int(b[2])
			case 2:
				if len(b) < 5 {
					return nil, errors.New("short packet header")
				}
				hdr, n = 5, int(b[1])<<24|int(b[2])<<16|int(b[3])<<8|int(b[4])
			default:
				hdr, n = 1, len(b)-1
			}
		}
		if n < 0 || hdr+n > len(b) {
			return nil, errors.New("truncated packet")
		}
		out = append(out, b[:hdr+n])
		b = b[hdr+n:]
	}
	return out, nil
}

// VerifyDetached checks a Release file against its detached armored
// signature (Release.gpg), for repositories without InRelease, and
// returns the Release text. file names the Release in errors.
func VerifyDetached(release, signature []byte, k *Keyring, now time.Time, file string) ([]byte, Signer, error) {
	if !bytes.Contains(signature, []byte("-----BEGIN PGP SIGNATURE-----")) {
		return nil, Signer{}, fmt.Errorf("%s.gpg: %w: not an armored signature", file, ErrUnsigned)
	}
	block, err := armor.Decode(bytes.NewReader(signature))
	if err != nil || block.Type != openpgp.SignatureType {
		return nil, Signer{}, fmt.Errorf("%s.gpg: %w: not an armored signature", file, ErrUnsigned)
	}
	sigs, err := io.ReadAll(block.Body)
	if err != nil {
		return nil, Signer{}, fmt.Errorf("%s.gpg: %w: %v", file, ErrBadSignature, err)
	}
	signer, err := verifyAny(release, sigs, k, now, file)
	if err != nil {
		return nil, Signer{}, err
	}
	return release, signer, nil
}

func signerOf(sig *packet.Signature, ent *openpgp.Entity) Signer {
	s := Signer{}
	if sig != nil && sig.IssuerKeyId != nil {
		s.KeyID = fmt.Sprintf("%016X", *sig.IssuerKeyId)
	}
	if ent != nil {
		if id := ent.PrimaryIdentity(); id != nil {
			s.Name = id.Name
		}
	}
	return s
}

// DecodeClearsigned is clearsign.Decode, which panics on some malformed
// messages (such as the header line directly followed by the signature
// line, go-crypto v1.4.1): those are reported as malformed (a nil block)
// instead, so a hostile mirror or .dsc cannot crash ingot.
func DecodeClearsigned(data []byte) (b *clearsign.Block, rest []byte) {
	defer func() {
		if recover() != nil {
			b, rest = nil, nil
		}
	}()
	return clearsign.Decode(data)
}
