package pusher

import (
	"testing"
)

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10M", "500k", "1G", "123", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := ParseRate(s); err == nil && v < 0 {
			t.Fatalf("negative rate %d from %q", v, s)
		}
	})
}
