package agentclient

import (
	"bytes"
	"testing"
)

func FuzzParseHosts(f *testing.F) {
	f.Add([]byte("web-1 10.0.0.7:7443\n# comment\n127.0.0.1:9000\n"))
	f.Add([]byte("a b c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		hosts, err := ParseHosts("hosts", bytes.NewReader(b))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, h := range hosts {
			if h.Name == "" || h.Addr == "" || seen[h.Name] {
				t.Fatalf("bad host accepted: %+v", h)
			}
			seen[h.Name] = true
		}
	})
}
