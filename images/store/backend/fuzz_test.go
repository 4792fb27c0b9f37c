package backend

import (
	"testing"

	"github.com/ingotfleet/ingot/images"
)

// ParsePath decides what the HTTP server serves: what it accepts must be a
// valid handle whose Path is the input.
func FuzzParsePath(f *testing.F) {
	d := images.Sum(nil).String()
	for _, s := range []string{"objects/" + d[:2] + "/" + d, "images/" + d, "refs/web/v1", "refs/../x", "lists/" + d, "tmp/.put-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		h, err := ParsePath(p)
		if err != nil {
			return
		}
		if h.Valid() != nil || h.Path() != p {
			t.Errorf("ParsePath(%q) = %+v, path %q", p, h, h.Path())
		}
	})
}
