package triggers

import "github.com/ingotfleet/ingot/internal/glob"

// Path patterns are internal/glob's, the project's one dialect; these
// names stay for the users of triggers' rules.
type (
	// Glob is a compiled path pattern.
	Glob = glob.Glob
	// GlobSet is a list of globs; a path matches it when it matches any.
	GlobSet = glob.Set
)

// CompileGlob is glob.Compile.
func CompileGlob(pattern string) (Glob, error) { return glob.Compile(pattern) }

// MustGlob is glob.MustCompile.
func MustGlob(pattern string) Glob { return glob.MustCompile(pattern) }

// CompileGlobs is glob.CompileSet.
func CompileGlobs(patterns []string) (GlobSet, error) { return glob.CompileSet(patterns) }
