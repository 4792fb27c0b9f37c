package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/pack"
)

// Signature returns the signature file of image d (see pusher/signing:
// one line per signer), stored as is, uncompressed. An unsigned image is
// an error wrapping ErrNotFound. The bytes are not checked here: whoever
// trusts a key checks them.
func (s *Store) Signature(ctx context.Context, d images.Digest) ([]byte, error) {
	data, err := s.b.Get(ctx, DigestHandle(KindSignature, d), MaxSignatureFile)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("signature of image %s: not in store %s: %w", d, s.b.Location(), ErrNotFound)
		}
		return nil, err
	}
	if len(data) > MaxSignatureFile {
		return nil, fmt.Errorf("signature of image %s from %s: %d bytes, more than %d: %w", d, s.b.Location(), len(data), MaxSignatureFile, ErrCorrupt)
	}
	return data, nil
}

// PutSignature replaces the signature file of image d, which must be in
// the store. Signature files are mutable (a signer is added by rewriting
// the file), so an HTTP server sends them as no-cache, like refs.
func (s *Store) PutSignature(ctx context.Context, d images.Digest, sig []byte) error {
	if len(sig) > MaxSignatureFile {
		return fmt.Errorf("signature of image %s: %d bytes, more than %d", d, len(sig), MaxSignatureFile)
	}
	ok, err := s.b.Has(ctx, DigestHandle(KindImage, d))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("signing image %s: not in store %s: %w", d, s.b.Location(), ErrNotFound)
	}
	return s.b.Put(ctx, DigestHandle(KindSignature, d), sig, true)
}

// ManifestBytes returns the canonical manifest text of image d, verified
// against d: what a signature covers and what an agent keeps.
func (s *Store) ManifestBytes(ctx context.Context, d images.Digest) ([]byte, error) {
	s.packs.NoteImage(d, pack.MaxIndex)
	data, err := s.getObject(ctx, d, MaxManifest)
	if err != nil && errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("image %s: not in store %s: %w", d, s.b.Location(), ErrNotFound)
	}
	return data, err
}
