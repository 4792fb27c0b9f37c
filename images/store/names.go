package store

import (
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/images/store/backend"
	"github.com/ingotfleet/ingot/images/store/chunks"
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

// The chunks' nouns, which the Store's API takes and returns, defined in
// package chunks.
type (
	// Chunk is one piece of a file's content (chunks.Chunk).
	Chunk = chunks.Chunk
	// Index lists the chunks of an image's files (chunks.Index).
	Index = chunks.Index
)

// Chunk sizes of the content-defined chunker (package chunks).
const (
	MinChunk = chunks.MinChunk
	AvgChunk = chunks.AvgChunk
	MaxChunk = chunks.MaxChunk
)

// ListLimit is the most bytes the chunk list of a file of size bytes can
// take (chunks.ListLimit).
func ListLimit(size int64) int64 { return chunks.ListLimit(size) }

// IndexLimit is the most bytes the index of image m can take
// (chunks.IndexLimit).
func IndexLimit(m *images.Manifest) int64 { return chunks.IndexLimit(m) }
