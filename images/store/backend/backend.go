package backend

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/ingotfleet/ingot/images"
)

// Kind is the class of a stored file; each has its own folder in the layout.
type Kind uint8

const (
	KindObject     Kind = iota + 1 // objects/xx/<sha256>: zstd(bytes), named by sha256(bytes)
	KindList                       // lists/xx/<file sha256>: zstd(chunk list of a multi-chunk file)
	KindImage                      // images/<image digest>: zstd(image index); its presence lists the image
	KindRef                        // refs/<name>/<tag>: "<image digest>\n", mutable
	KindSignature                  // signatures/<image digest>: the image's signature file, mutable (signers are added)
	KindDelta                      // deltas/<from sha256>/<to sha256>: zstd of content "to" with content "from" as raw dictionary
	KindPack                       // packs/<sha256 of the pack>: zstd frames of objects (layout v2)
	KindPackIndex                  // packindex/<pack sha256>: the pack index of one pack
	KindImagePacks                 // imagepacks/<image digest>: the pack index of every object an image needs
)

var kindNames = [...]string{KindObject: "objects", KindList: "lists", KindImage: "images", KindRef: "refs",
	KindSignature: "signatures", KindDelta: "deltas",
	KindPack: "packs", KindPackIndex: "packindex", KindImagePacks: "imagepacks"}

func (k Kind) String() string {
	if k == 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", uint8(k))
	}
	return kindNames[k]
}

// Kinds lists every kind, in layout order.
var Kinds = []Kind{KindObject, KindList, KindImage, KindRef, KindSignature, KindDelta, KindPack, KindPackIndex, KindImagePacks}

// Mutable reports whether files of kind k may be replaced (refs and
// signatures); every other kind is named by its content and never changes.
func (k Kind) Mutable() bool { return k == KindRef || k == KindSignature }

// Handle names one stored file: its kind and name. For objects, lists and
// images and signatures the name is 64 lowercase hex digits; for refs it
// is "name/tag"; for deltas "<from hex>/<to hex>".
type Handle struct {
	Kind Kind
	Name string
}

// Path is the handle's path relative to the store root, with '/'
// separators: the same under a directory and under an HTTP base URL.
func (h Handle) Path() string {
	switch h.Kind {
	case KindObject, KindList:
		return h.Kind.String() + "/" + h.Name[:2] + "/" + h.Name
	}
	return h.Kind.String() + "/" + h.Name
}

func (h Handle) String() string { return h.Path() }

// DigestHandle is the handle of kind k named by d.
func DigestHandle(k Kind, d images.Digest) Handle { return Handle{Kind: k, Name: d.String()} }

var (
	hexName  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	refName  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	pairName = regexp.MustCompile(`^[0-9a-f]{64}/[0-9a-f]{64}$`)
)

// Valid checks that h names a file a store may hold; backends refuse the
// rest, so a name never becomes a path outside the store.
func (h Handle) Valid() error {
	switch h.Kind {
	case KindObject, KindList, KindImage, KindSignature, KindPack, KindPackIndex, KindImagePacks:
		if hexName.MatchString(h.Name) {
			return nil
		}
	case KindDelta:
		if pairName.MatchString(h.Name) {
			return nil
		}
	case KindRef:
		if refName.MatchString(h.Name) {
			return nil
		}
	default:
		return fmt.Errorf("%w: unknown kind %d", ErrInvalidName, h.Kind)
	}
	return fmt.Errorf("%w: %s %q", ErrInvalidName, h.Kind, h.Name)
}

// ParsePath is the inverse of Handle.Path; it refuses anything that is not
// a valid handle (used by the HTTP server to decide what it serves).
func ParsePath(p string) (Handle, error) {
	for _, k := range Kinds {
		prefix := k.String() + "/"
		if len(p) <= len(prefix) || p[:len(prefix)] != prefix {
			continue
		}
		rest := p[len(prefix):]
		h := Handle{Kind: k, Name: rest}
		if k == KindObject || k == KindList {
			if len(rest) < 3 || rest[2] != '/' {
				return Handle{}, fmt.Errorf("%w: %q", ErrInvalidName, p)
			}
			h.Name = rest[3:]
			if err := h.Valid(); err != nil {
				return Handle{}, err
			}
			if h.Name[:2] != rest[:2] {
				return Handle{}, fmt.Errorf("%w: %q", ErrInvalidName, p)
			}
			return h, nil
		}
		if err := h.Valid(); err != nil {
			return Handle{}, err
		}
		return h, nil
	}
	return Handle{}, fmt.Errorf("%w: %q", ErrInvalidName, p)
}

// Backend stores and returns bytes by handle. It knows nothing of chunks
// or compression and does not verify content: Store does. Implementations
// are safe for concurrent use.
type Backend interface {
	// Location names the backend in errors and logs ("/var/lib/ingot/store",
	// "http://cache:8080/").
	Location() string
	// Get returns the stored bytes; an error wrapping ErrNotFound if
	// absent, ErrTooLarge if they are more than max (checked while
	// reading: no more than max+1 bytes are ever held).
	Get(ctx context.Context, h Handle, max int64) ([]byte, error)
	// GetRange returns exactly n bytes (n > 0) of h from offset off: an
	// error wrapping ErrNotFound if h is absent, ErrCorrupt if the range
	// is not all inside it (or a server answers with other bytes than
	// those asked for). Packs are read so (HTTP range requests).
	GetRange(ctx context.Context, h Handle, off, n int64) ([]byte, error)
	// Has reports whether h is stored.
	Has(ctx context.Context, h Handle) (bool, error)
	// Put stores data under h, atomically: readers see all of it or
	// nothing, the old content or the new. (For content-addressed kinds
	// both are the same bytes, unless the old were damaged: a Put repairs
	// them. Store checks Has first to spare the compression.) durable:
	// fsync before returning; otherwise the caller calls Sync before
	// depending on it. Put does not keep data after it returns.
	Put(ctx context.Context, h Handle, data []byte, durable bool) error
	// Delete removes h; removing an absent file is not an error.
	Delete(ctx context.Context, h Handle) error
	// List calls fn with the name of every stored file of kind k, in no
	// particular order; an error wrapping ErrNotSupported where the
	// backend cannot list (plain HTTP).
	List(ctx context.Context, k Kind, fn func(name string) error) error
	// Sync makes every earlier Put durable.
	Sync(ctx context.Context) error
}

// Errors of the store and its backends; test them with errors.Is.
var (
	ErrNotFound     = errors.New("not found")
	ErrCorrupt      = errors.New("content does not match its name")
	ErrReadOnly     = errors.New("store is read-only")
	ErrNotSupported = errors.New("not supported by this backend")
	ErrInvalidName  = errors.New("invalid store name")
	ErrAmbiguous    = errors.New("ambiguous reference")
	// ErrTransient is wrapped by errors worth another try at the same
	// location (a reset connection, a 5xx or 429, a truncated body):
	// Retry retries them.
	ErrTransient = errors.New("transient failure")
	// ErrTooLarge is wrapped by errors about stored files longer than
	// their kind may be (a hostile or broken store); the message names the
	// kind and the limit.
	ErrTooLarge = errors.New("larger than its kind may be")
)

// TooLarge is the error for h, read from loc, being more than max bytes.
func TooLarge(h Handle, loc string, what string, max int64) error {
	return fmt.Errorf("%s from %s: %s more than the %d bytes a file of %s may hold: %w", h, loc, what, max, h.Kind, ErrTooLarge)
}
