package triggers

import "testing"

func FuzzParse(f *testing.F) {
	f.Add([]byte(sampleRules))
	f.Add([]byte("triggers:\n  - name: a\n    paths: ['**/x']\n    command: [y]\n"))
	f.Add([]byte("triggers: [{name: a, paths: [a/**/b], command: [c], timeout: 1s, phase: before}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rules, err := ParseBytes("fuzz.yaml", b)
		if err != nil {
			return
		}
		for _, r := range rules {
			if r.Name == "" || len(r.Command) == 0 || len(r.Paths) == 0 || r.Timeout <= 0 {
				t.Fatalf("accepted an invalid rule: %+v", r)
			}
			r.Watches("a/b/c")
		}
	})
}
