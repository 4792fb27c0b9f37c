package images

// For the tests of package images_test, which also use imagetar.
var (
	MakeTree       = makeTree
	SampleManifest = sampleManifest
	Update         = update
)
