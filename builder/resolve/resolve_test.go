package resolve

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ingotfleet/ingot/builder/debrepo"
	"github.com/ingotfleet/ingot/builder/spec"
)

// pkg makes an index entry: "name version [arch]" plus fields.
func pkg(nv string, fields ...string) *debrepo.Package {
	f := strings.Fields(nv)
	p := &debrepo.Package{Name: f[0], Version: f[1], Architecture: "amd64", Priority: "optional",
		Filename: "pool/" + f[0] + ".deb", Size: 1, SHA256: strings.Repeat("0", 64)}
	if len(f) > 2 {
		p.Architecture = f[2]
	}
	for _, kv := range fields {
		k, v, _ := strings.Cut(kv, ": ")
		switch k {
		case "Depends":
			p.Depends = v
		case "Pre-Depends":
			p.PreDepends = v
		case "Provides":
			p.Provides = v
		case "Conflicts":
			p.Conflicts = v
		case "Breaks":
			p.Breaks = v
		case "Essential":
			p.Essential = true
		case "Priority":
			p.Priority = v
		case "Multi-Arch":
			p.MultiArch = v
		case "Repository":
			p.Repository = 1
		default:
			panic("unknown field " + k)
		}
	}
	return p
}

func index(pkgs ...*debrepo.Package) *debrepo.Index {
	return &debrepo.Index{
		Suites: []debrepo.Suite{
			{URL: "http://x/", Suite: "stable", Release: &debrepo.Release{}},
			{URL: "http://x/", Suite: "backports", Release: &debrepo.Release{NotAutomatic: true}},
		},
		Packages: pkgs,
	}
}

func TestResolve(t *testing.T) {
	base := []*debrepo.Package{
		pkg("base-files 12", "Essential: yes", "Priority: required"),
		pkg("mawk 1.3", "Priority: required", "Provides: awk"),
		pkg("ess 1.0", "Essential: yes", "Pre-Depends: libess (>= 1.0)"),
		pkg("libess 1.1"),
	}
	tests := []struct {
		name    string
		variant string
		want    []string // "name version"
		pkgs    []string
		index   []*debrepo.Package
		archs   []string
		wantErr string
	}{
		{name: "minbase closure with Pre-Depends", want: []string{"base-files 12", "ess 1.0", "libess 1.1", "mawk 1.3"}},
		{name: "essential variant leaves required out", variant: spec.VariantEssential, want: []string{"base-files 12", "ess 1.0", "libess 1.1"}},
		{name: "important variant", variant: spec.VariantImportant,
			index: []*debrepo.Package{pkg("vim-tiny 9", "Priority: important"), pkg("nano 7", "Priority: standard")},
			want:  []string{"base-files 12", "ess 1.0", "libess 1.1", "mawk 1.3", "vim-tiny 9"}},
		{name: "standard variant", variant: spec.VariantStandard,
			index: []*debrepo.Package{pkg("vim-tiny 9", "Priority: important"), pkg("nano 7", "Priority: standard"), pkg("emacs 29", "Priority: optional")},
			want:  []string{"base-files 12", "ess 1.0", "libess 1.1", "mawk 1.3", "vim-tiny 9", "nano 7"}},
		{name: "first alternative", pkgs: []string{"a"},
			index: []*debrepo.Package{pkg("a 1", "Depends: b | c"), pkg("b 1"), pkg("c 1")},
			want:  []string{"a 1", "b 1"}},
		{name: "missing alternative skipped", pkgs: []string{"a"},
			index: []*debrepo.Package{pkg("a 1", "Depends: nonexistent | c"), pkg("c 1")},
			want:  []string{"a 1", "c 1"}},
		{name: "alternative already selected", pkgs: []string{"c", "a"},
			index: []*debrepo.Package{pkg("a 1", "Depends: b | c"), pkg("b 1"), pkg("c 1")},
			want:  []string{"a 1", "c 1"}},
		{name: "virtual satisfied by selected provider", pkgs: []string{"a"},
			index: []*debrepo.Package{pkg("a 1", "Depends: awk")},
			want:  []string{"a 1"}},
		{name: "virtual picks provider by priority then name", pkgs: []string{"a"},
			index: []*debrepo.Package{pkg("a 1", "Depends: mta"), pkg("zmail 1", "Provides: mta", "Priority: standard"), pkg("exim 1", "Provides: mta", "Priority: optional"), pkg("amail 1", "Provides: mta", "Priority: extra")},
			want:  []string{"a 1", "zmail 1"}},
		{name: "versioned dependency takes highest version", pkgs: []string{"a"},
			index: []*debrepo.Package{pkg("a 1", "Depends: lib (>= 2)"), pkg("lib 1"), pkg("lib 3"), pkg("lib 2")},
			want:  []string{"a 1", "lib 3"}},
		{name: "upper bound picks older version", pkgs: []string{"a"},
			index: []*debrepo.Package{pkg("a 1", "Depends: lib (<< 2)"), pkg("lib 1"), pkg("lib 3")},
			want:  []string{"a 1", "lib 1"}},
		{name: "dpkg ordering: epoch and tilde", pkgs: []string{"a"},
			index: []*debrepo.Package{pkg("a 1", "Depends: lib (>> 1.0~rc1)"), pkg("lib 2.0"), pkg("lib 1:0.5"), pkg("lib 1.0~rc1")},
			want:  []string{"a 1", "lib 1:0.5"}},
		{name: "versioned Provides", pkgs: []string{"a"},
			index: []*debrepo.Package{pkg("a 1", "Depends: v (>= 2)"), pkg("p 1", "Provides: v (= 1)"), pkg("q 1", "Provides: v (= 2)"), pkg("r 1", "Provides: v")},
			want:  []string{"a 1", "q 1"}},
		{name: "pinned version", pkgs: []string{"lib=1"},
			index: []*debrepo.Package{pkg("lib 1"), pkg("lib 3")},
			want:  []string{"lib 1"}},
		{name: "NotAutomatic suite only when nothing else", pkgs: []string{"a", "b"},
			index: []*debrepo.Package{pkg("a 1"), pkg("a 2", "Repository: 1"), pkg("b 5", "Repository: 1")},
			want:  []string{"a 1", "b 5"}},
		{name: "Multi-Arch foreign across architectures", pkgs: []string{"app:i386"}, archs: []string{"amd64", "i386"},
			index: []*debrepo.Package{pkg("app 1 i386", "Depends: tool, libx"), pkg("tool 1", "Multi-Arch: foreign"), pkg("libx 1 i386", "Multi-Arch: same"), pkg("libx 2")},
			want:  []string{"app 1", "tool 1", "libx 1"}},
		{name: "arch all satisfies any architecture", pkgs: []string{"app"},
			index: []*debrepo.Package{pkg("app 1", "Depends: data"), pkg("data 1 all")},
			want:  []string{"app 1", "data 1"}},
		{name: "two packages need different versions", pkgs: []string{"a", "b"},
			index:   []*debrepo.Package{pkg("a 1", "Depends: c (>= 2)"), pkg("b 1", "Depends: c (<< 2)"), pkg("c 1"), pkg("c 2")},
			wantErr: "b 1 depends on c (<< 2), but c 2 is selected (needed by a 1 (c (>= 2)))"},
		{name: "conflict", pkgs: []string{"a", "b"},
			index:   []*debrepo.Package{pkg("a 1", "Conflicts: b"), pkg("b 1")},
			wantErr: "a 1 conflicts with b, but b 1 is selected (needed by the spec)"},
		{name: "breaks with version", pkgs: []string{"a", "b"},
			index:   []*debrepo.Package{pkg("a 1", "Breaks: b (<< 2)"), pkg("b 1")},
			wantErr: "a 1 conflicts with b (<< 2)"},
		{name: "breaks a newer version is fine", pkgs: []string{"a", "b"},
			index: []*debrepo.Package{pkg("a 1", "Breaks: b (<< 2)"), pkg("b 2")},
			want:  []string{"a 1", "b 2"}},
		{name: "conflict with a virtual it provides itself", pkgs: []string{"exim"},
			index: []*debrepo.Package{pkg("exim 1", "Provides: mta", "Conflicts: mta")},
			want:  []string{"exim 1"}},
		{name: "unsatisfiable dependency", pkgs: []string{"a"},
			index:   []*debrepo.Package{pkg("a 1", "Depends: lib (>= 5) | other"), pkg("lib 1")},
			wantErr: "a 1 depends on lib (>= 5) | other, but lib: available 1 (amd64); other: no package or provider"},
		{name: "unknown package", pkgs: []string{"nope"}, wantErr: "package nope: unsatisfiable: not found"},
		{name: "pinned version missing", pkgs: []string{"lib=9"}, index: []*debrepo.Package{pkg("lib 1")}, wantErr: "version 9 not available (have 1)"},
		{name: "virtual with one provider requested", pkgs: []string{"awk"}, want: []string{"base-files 12", "ess 1.0", "libess 1.1", "mawk 1.3"}},
		{name: "virtual with several providers requested", pkgs: []string{"mta"},
			index:   []*debrepo.Package{pkg("x 1", "Provides: mta"), pkg("y 1", "Provides: mta")},
			wantErr: "package mta is virtual, provided by x, y"},
		{name: "bad relation", pkgs: []string{"a"}, index: []*debrepo.Package{pkg("a 1", "Depends: b (>= )")}, wantErr: "package a 1: Depends:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			variant := tc.variant
			if variant == "" {
				variant = spec.VariantMinbase
			}
			idx := index(append(append([]*debrepo.Package{}, base...), tc.index...)...)
			archs := tc.archs
			if archs == nil {
				archs = []string{"amd64"}
			}
			got, err := Resolve(context.Background(), idx, Request{Architectures: archs, Variant: variant, Packages: tc.pkgs})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range got {
				names = append(names, p.Name+" "+p.Version)
			}
			want := tc.want
			if variant != spec.VariantEssential && !strings.Contains(strings.Join(want, ","), "base-files") {
				want = append([]string{"base-files 12", "ess 1.0", "libess 1.1", "mawk 1.3"}, want...)
			}
			if g, w := strings.Join(sorted(names), ", "), strings.Join(sorted(want), ", "); g != w {
				t.Fatalf("got  %s\nwant %s", g, w)
			}
		})
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestResolveErrorsAreUnsatisfiable(t *testing.T) {
	idx := index(pkg("a 1", "Depends: missing"))
	_, err := Resolve(context.Background(), idx, Request{Architectures: []string{"amd64"}, Variant: spec.VariantMinbase, Packages: []string{"a"}})
	if !errors.Is(err, ErrUnsatisfiable) {
		t.Fatalf("err = %v, want ErrUnsatisfiable", err)
	}
}

func TestParseRelations(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"libc6 (>= 2.34), libssl3 (>= 3.0.0)", "libc6 (>= 2.34); libssl3 (>= 3.0.0)", ""},
		{"default-mta | mail-transport-agent", "default-mta | mail-transport-agent", ""},
		{"python3:any (>= 3.9~)", "python3:any (>= 3.9~)", ""},
		{"perl (> 5)", "perl (>= 5)", ""},
		{"a(<<1)", "a (<< 1)", ""},
		{"a (>= 1) [amd64]", "", "want name (op version)"},
		{"a [amd64]", "", "unexpected text"},
		{"a (1)", "", "no version operator"},
		{"a,,b", "", "empty item"},
		{"a (>= 1", "", "want name (op version)"},
		{"a:", "", "empty architecture qualifier"},
	} {
		rels, err := ParseRelations(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		var s []string
		for _, r := range rels {
			s = append(s, r.String())
		}
		if got := strings.Join(s, "; "); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzParseRelations(f *testing.F) {
	f.Add("libc6 (>= 2.34), python3:any | python3-minimal (<< 3.12~)")
	f.Fuzz(func(t *testing.T, s string) {
		rels, err := ParseRelations(s)
		if err != nil {
			return
		}
		// What parses prints in a form that parses to the same thing.
		var parts []string
		for _, r := range rels {
			parts = append(parts, r.String())
		}
		again, err := ParseRelations(strings.Join(parts, ", "))
		if err != nil || len(again) != len(rels) {
			t.Fatalf("%q printed as %q does not parse back: %v", s, strings.Join(parts, ", "), err)
		}
	})
}
