package triggers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const sampleRules = `
triggers:
  - name: sshd
    paths: ["/etc/ssh/**", "/usr/sbin/sshd"]
    command: ["systemctl", "restart", "ssh"]
    timeout: 30s
  - name: ldconfig
    paths: ["usr/lib/**/*.so*", "lib/**/*.so*"]
    command: ["ldconfig"]
    order: -10
  - name: bootloader
    paths: ["boot/**"]
    command: ["update-grub"]
    phase: before
`

func TestParseAndSelect(t *testing.T) {
	rules, err := ParseBytes("rules.yaml", []byte(sampleRules))
	if err != nil {
		t.Fatal(err)
	}
	if rules[0].Timeout != 30*time.Second || rules[1].Timeout != DefaultTimeout || rules[0].Phase != PhaseAfter {
		t.Errorf("defaults not applied: %+v", rules)
	}
	changed := []string{"usr/sbin/sshd", "etc/ssh/sshd_config", "usr/lib/x86_64-linux-gnu/libssl.so.3", "boot/vmlinuz", "usr/bin/ls"}
	after := Select(rules, PhaseAfter, changed)
	var names []string
	for _, m := range after {
		names = append(names, m.Rule.Name)
	}
	if !slices.Equal(names, []string{"ldconfig", "sshd"}) {
		t.Errorf("after-phase rules = %v, want [ldconfig sshd] (order, then name)", names)
	}
	if !slices.Equal(after[1].Paths, []string{"etc/ssh/sshd_config", "usr/sbin/sshd"}) {
		t.Errorf("sshd paths = %v", after[1].Paths)
	}
	before := Select(rules, PhaseBefore, changed)
	if len(before) != 1 || before[0].Rule.Name != "bootloader" {
		t.Errorf("before-phase rules = %+v", before)
	}
	if got := Select(rules, PhaseAfter, []string{"usr/bin/ls"}); len(got) != 0 {
		t.Errorf("rules fired for an unwatched path: %+v", got)
	}
}

func TestParseRejects(t *testing.T) {
	tests := map[string]string{
		"unknown key":  "triggers:\n  - name: a\n    paths: [x]\n    command: [y]\n    colour: red\n",
		"no name":      "triggers:\n  - paths: [x]\n    command: [y]\n",
		"no paths":     "triggers:\n  - name: a\n    command: [y]\n",
		"no command":   "triggers:\n  - name: a\n    paths: [x]\n",
		"bad phase":    "triggers:\n  - name: a\n    paths: [x]\n    command: [y]\n    phase: during\n",
		"bad glob":     "triggers:\n  - name: a\n    paths: ['a/[']\n    command: [y]\n",
		"dup name":     "triggers:\n  - name: a\n    paths: [x]\n    command: [y]\n  - name: a\n    paths: [x]\n    command: [y]\n",
		"bad duration": "triggers:\n  - name: a\n    paths: [x]\n    command: [y]\n    timeout: soon\n",
		"not yaml":     "triggers: [",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseBytes("in.yaml", []byte(in))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), "in.yaml") {
				t.Errorf("error %q does not name the input", err)
			}
		})
	}
}

func TestLoadDirAndMerge(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "10-a.yaml"), []byte("triggers:\n  - name: a\n    paths: [x]\n    command: [\"true\"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "20-b.yaml"), []byte("triggers:\n  - name: b\n    paths: [y]\n    command: [\"true\"]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "README"), []byte("not rules"), 0o644)
	rules, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 {
		t.Fatalf("got %d rules", len(rules))
	}
	over := []Rule{{Name: "a", Paths: []string{"z"}, Command: []string{"false"}}}
	m := Merge(rules, over)
	if len(m) != 2 || m[0].Command[0] != "false" {
		t.Errorf("Merge did not let the later list override: %+v", m)
	}
	if r, err := LoadDir(filepath.Join(dir, "missing")); err != nil || len(r) != 0 {
		t.Errorf("missing dir: %v %v", r, err)
	}
}

func TestRun(t *testing.T) {
	root := t.TempDir()
	log := filepath.Join(t.TempDir(), "log")
	rule := func(name, script string, timeout time.Duration) Rule {
		r := Rule{Name: name, Paths: []string{"**"}, Command: []string{"sh", "-c", script}, Timeout: timeout}
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	ok := rule("ok", `echo "$INGOT_TRIGGER $(pwd) $(cat | wc -l) $(wc -l < "$INGOT_CHANGED_FILE")" >> `+log, 0)
	fail := rule("fail", "echo broken >&2; exit 3", 0)
	slow := rule("slow", "sleep 30 & sleep 30; echo never", 200*time.Millisecond)
	ctx := context.Background()
	paths := []string{"a", "b/c"}

	res, err := Run(ctx, []Match{{ok, paths}, {ok, paths}}, Env{Root: root, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(log)
	want := "ok " + root + " 2 2\nok " + root + " 2 2\n"
	if string(got) != want || len(res) != 2 {
		t.Errorf("log = %q, want %q", got, want)
	}

	res, err = Run(ctx, []Match{{fail, paths}, {ok, paths}}, Env{Root: root})
	var te *Error
	if !errors.As(err, &te) || te.Name != "fail" || !strings.Contains(te.Output, "broken") {
		t.Fatalf("failing trigger: err = %v", err)
	}
	if len(res) != 1 {
		t.Errorf("run went on after a failure: %+v", res)
	}

	_, err = Run(ctx, []Match{{slow, paths}}, Env{Root: root})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("slow trigger: err = %v, want timeout", err)
	}
}
