package builder

import (
	"sort"

	"github.com/ingotfleet/ingot/builder/deb"
)

// dependencyOrder returns the indexes of pkgs so that every package comes
// after the packages it Pre-Depends and Depends on (when they are in the
// set; for an alternative "a | b" the first one present counts; virtual
// names count through Provides). Ties go by name, so the order is the
// same on every run. A dependency cycle is broken by taking the package
// with the smallest name among those left, as dpkg does with a warning.
// A malformed relationship field is an error naming the package.
func dependencyOrder(ctls []*deb.Control) ([]int, error) {
	byName := map[string]int{}
	provides := map[string][]int{}
	for i, c := range ctls {
		byName[c.Package()] = i
		rels, err := c.Relations("Provides")
		if err != nil {
			return nil, err
		}
		for _, r := range rels {
			provides[r[0].Name] = append(provides[r[0].Name], i)
		}
	}
	deps := make([]map[int]bool, len(ctls))
	for i, c := range ctls {
		deps[i] = map[int]bool{}
		for _, field := range []string{"Pre-Depends", "Depends"} {
			rels, err := c.Relations(field)
			if err != nil {
				return nil, err
			}
			for _, alts := range rels {
				for _, alt := range alts {
					name := alt.Name
					if j, ok := byName[name]; ok {
						if j != i {
							deps[i][j] = true
						}
						break
					}
					if ps := provides[name]; len(ps) > 0 {
						if ps[0] != i {
							deps[i][ps[0]] = true
						}
						break
					}
				}
			}
		}
	}
	done := make([]bool, len(ctls))
	var out []int
	names := func(i int) string { return ctls[i].Package() }
	for len(out) < len(ctls) {
		var ready []int
		for i := range ctls {
			if done[i] {
				continue
			}
			ok := true
			for j := range deps[i] {
				if !done[j] {
					ok = false
					break
				}
			}
			if ok {
				ready = append(ready, i)
			}
		}
		if len(ready) == 0 { // a cycle: break it at its package with the smallest name
			for i := range ctls {
				if !done[i] && onCycle(i, deps, done) && (len(ready) == 0 || names(i) < names(ready[0])) {
					ready = []int{i}
				}
			}
		}
		sort.Slice(ready, func(a, b int) bool { return names(ready[a]) < names(ready[b]) })
		i := ready[0]
		done[i] = true
		out = append(out, i)
	}
	return out, nil
}

// onCycle reports whether i can reach itself through dependencies that
// are not done yet.
func onCycle(i int, deps []map[int]bool, done []bool) bool {
	seen := map[int]bool{}
	stack := []int{i}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for j := range deps[n] {
			if done[j] {
				continue
			}
			if j == i {
				return true
			}
			if !seen[j] {
				seen[j] = true
				stack = append(stack, j)
			}
		}
	}
	return false
}
