package store

import (
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/backend"
)

// The backend's nouns, which the Store's API takes and returns, are named
// here too, so a reader of a store needs one import; they are defined in
// package backend (docs/store.md).
type (
	// Backend stores and returns bytes by handle (backend.Backend).
	Backend = backend.Backend
	// Handle names one stored file (backend.Handle).
	Handle = backend.Handle
	// Kind is the class of a stored file (backend.Kind).
	Kind = backend.Kind
)

// The kinds of stored files.
const (
	KindObject     = backend.KindObject
	KindList       = backend.KindList
	KindImage      = backend.KindImage
	KindRef        = backend.KindRef
	KindSignature  = backend.KindSignature
	KindDelta      = backend.KindDelta
	KindPack       = backend.KindPack
	KindPackIndex  = backend.KindPackIndex
	KindImagePacks = backend.KindImagePacks
)

// LayoutV1 and LayoutV2 are the store layout versions.
const (
	LayoutV1 = backend.LayoutV1
	LayoutV2 = backend.LayoutV2
)

// Errors of the store and its backends; test them with errors.Is.
var (
	ErrNotFound     = backend.ErrNotFound
	ErrCorrupt      = backend.ErrCorrupt
	ErrReadOnly     = backend.ErrReadOnly
	ErrNotSupported = backend.ErrNotSupported
	ErrInvalidName  = backend.ErrInvalidName
	ErrAmbiguous    = backend.ErrAmbiguous
	ErrTooLarge     = backend.ErrTooLarge
)

// Kinds lists every kind, in layout order.
var Kinds = backend.Kinds

// DigestHandle is the handle of kind k named by d.
func DigestHandle(k Kind, d images.Digest) Handle { return backend.DigestHandle(k, d) }
