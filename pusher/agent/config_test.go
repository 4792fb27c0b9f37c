package agent

import (
	"testing"
)

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("root: /srv/root\ntrusted_keys: [k.pub]\nlimits:\n  download: 10M\n"))
	f.Add([]byte("root: /\ntrusted_keys: [a]\ntriggers:\n  - name: x\n    paths: ['**']\n    command: [true]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig("/etc/ingot/agent.yaml", b)
		if err != nil {
			return
		}
		if c.Root == "" || len(c.TrustedKeys) == 0 || c.StateDir == "" {
			t.Fatalf("incomplete config accepted: %+v", c)
		}
	})
}

// The example config in examples/ parses and validates.
func TestExampleConfig(t *testing.T) {
	c, err := LoadConfig("../../examples/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Root != "/" || len(c.Stores) != 2 || len(c.Triggers) != 4 || c.Limits.Download != "50M" {
		t.Errorf("example config read as %+v", c)
	}
	if _, err := c.localGlobs(); err != nil {
		t.Error(err)
	}
}
