package slots

import (
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/pusher/agent"
)

// The example config parses; bad slot sections are refused with a reason.
func TestSlotsConfig(t *testing.T) {
	c, err := agent.LoadConfig("../../examples/agent-slots.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Slots.B.FSType != "ext4" || c.Slots.Boot.Type != "grub" || len(c.Slots.Health.Checks) != 3 || c.Slots.EtcDefault != agent.PolicyFail {
		t.Fatalf("%+v", c.Slots)
	}
	base := "root: /\ntrusted_keys: [k.pub]\nslots:\n"
	for _, tc := range []struct{ yaml, want string }{
		{"  a: {dir: /a}\n  b: {dir: /b}\n  boot: {type: file}\n", "state_dir is not set"},
		{"  a: {dir: /a, device: /dev/x}\n  b: {dir: /b}\n  state_dir: /d\n  boot: {type: file}\n", "exactly one of dir and device"},
		{"  a: {dir: /a}\n  b: {dir: /b}\n  state_dir: /d\n  boot: {type: lilo}\n", "want file, grub or systemd-boot"},
		{"  a: {dir: /a}\n  b: {dir: /b}\n  state_dir: /d\n  boot: {type: file}\n  etc_default: overwrite\n", "unknown policy"},
		{"  a: {dir: /a}\n  b: {dir: /b}\n  state_dir: /d\n  boot: {type: file}\n  keep: [data]\n", "not an absolute path"},
		{"  a: {dir: /a}\n  b: {dir: /b}\n  state_dir: /d\n  boot: {type: file}\n  health: {checks: [{tcp: x, http: http://y}]}\n", "exactly one of http, tcp, command"},
		{"  a: {dir: /a}\n  b: {dir: /b}\n  state_dir: /d\n  boot: {type: file}\n  grub: {}\n", "field grub not found"},
	} {
		_, err := agent.ParseConfig("/x/agent.yaml", []byte(base+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
