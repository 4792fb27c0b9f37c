package rpm

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
)

// DigestHash gives a hash for the header's file digest algorithm
// (RPMTAG_FILEDIGESTALGO; absent means MD5).
func (p *Package) DigestHash() (func() hash.Hash, error) {
	algo, ok := p.Int(TagFileDigestAlgo)
	if !ok {
		algo = 1
	}
	return hashAlgo(algo)
}

func hashAlgo(algo int64) (func() hash.Hash, error) {
	switch algo {
	case 1:
		return md5.New, nil
	case 2:
		return sha1.New, nil
	case 8:
		return sha256.New, nil
	case 9:
		return sha512.New384, nil
	case 10:
		return sha512.New, nil
	case 11:
		return sha256.New224, nil
	}
	return nil, fmt.Errorf("unknown digest algorithm %d", algo)
}

// Payload returns the decompressed payload (a cpio archive) and its
// compression name. The returned reader checks the payload digest of the
// header, if any, when it reaches the end of the compressed stream. Its
// errors do not name the input: the caller's wrapping does.
func (p *Package) Payload() (io.ReadCloser, string, error) {
	format := p.Str(TagPayloadFormat)
	if format != "" && format != "cpio" {
		return nil, "", fmt.Errorf("%s: %w: payload format %q is not cpio", p.Name, ErrBadRPM, format)
	}
	comp := p.Str(TagPayloadCompressor)
	if comp == "" {
		comp = "gzip"
	}
	var src io.Reader = p.br
	var check func() error
	if d := p.Strings(TagPayloadDigest); len(d) > 0 {
		algo, ok := p.Int(TagPayloadDigestAlgo)
		if !ok {
			algo = 8
		}
		newHash, err := hashAlgo(algo)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w: payload digest: %v", p.Name, ErrBadRPM, err)
		}
		h := newHash()
		src = io.TeeReader(p.br, h)
		want := strings.ToLower(d[0])
		check = func() error {
			// Drain what the decompressor did not need (padding).
			if _, err := io.Copy(h, p.br); err != nil {
				return err
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != want {
				return fmt.Errorf("%w: payload digest %s, header says %s", ErrBadRPM, got, want)
			}
			return nil
		}
	}
	rc, err := decompress(src, comp)
	if err != nil {
		return nil, comp, fmt.Errorf("%s: payload: %w", p.Name, err)
	}
	return &payloadReader{rc: rc, check: check}, comp, nil
}

type payloadReader struct {
	rc    io.ReadCloser
	check func() error
	done  bool
	err   error // sticky: returned by every Read after the end
}

func (r *payloadReader) Read(b []byte) (int, error) {
	if r.done {
		if r.err != nil {
			return 0, r.err
		}
		return 0, io.EOF
	}
	n, err := r.rc.Read(b)
	if err == io.EOF {
		r.done = true
		if r.check != nil {
			// Sticky, so that a reader that drops an error coming with
			// data (io.ReadFull) still sees it on its next Read.
			r.err = r.check()
			if r.err != nil {
				return n, r.err
			}
		}
	} else if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: payload truncated", ErrBadRPM)
		} else {
			err = fmt.Errorf("%w: payload: %v", ErrBadRPM, err)
		}
		r.done, r.err = true, err
	}
	return n, err
}

func (r *payloadReader) Close() error { return r.rc.Close() }
