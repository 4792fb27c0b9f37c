package pack

// Layout v2 keeps chunks in packs (docs/store.md): a pack is zstd frames
// one after another, a frame holds one object or several small ones, and
// pack indexes say where each object is. A reader fetches the frame of an
// object with a range request, decompresses it (bounded by MaxFrame) and
// checks the object against its name, as it does a loose object.
const (
	// packTarget is the size at which a pack is closed.
	packTarget = 4 << 20
	// FrameTarget is the size at which a frame is closed. Objects share
	// frames in the order they are stored, so the compressor sees 2 MiB
	// of context. Measured on the Debian minbase root against the
	// .tar.zst of the tree (tar --zstd): frames of 128 KiB made the store
	// 1.19× its size, 512 KiB 1.12×, 1 MiB 1.07×, 2 MiB 1.035×, 4 MiB
	// 1.004×; 1 MiB at SpeedBetterCompression 1.047× for twice the CPU;
	// a frame of its own for every chunk of 32 KiB or more undid most of
	// it (1.20×). The price is paid by a reader of one object: it fetches
	// and decompresses its frame (at most MaxFrame).
	FrameTarget = 2 << 20
	// frameCacheSize is how many decompressed frames a Set keeps: an
	// export reads the small files of a frame one after another.
	frameCacheSize = 8
	// MaxFrameObjs bounds the objects of one frame.
	MaxFrameObjs = 1024
)

// CompressedLimit is the most bytes zstd can take to hold n bytes: what
// does not compress is stored in raw blocks of at most 128 KiB, each with
// a 3-byte header, after a frame header of at most 18 bytes. The margin
// is generous: it only has to be a bound. Every compressed read of a
// store, of a frame or of a loose object, is bounded by it.
func CompressedLimit(n int64) int64 { return n + n/256 + 4096 }

// NoSizeMax is the most a zstd frame that declares no content size may
// hold: ingot's encoder leaves the size out only below 1 KiB.
const NoSizeMax = 64 << 10
