package resolve

import "github.com/ingotfleet/ingot/builder/deb"

// Relations are parsed by builder/deb, the project's one parser of them;
// these names stay for the resolver's callers.
type (
	// Possibility is one alternative of a relation.
	Possibility = deb.Possibility
	// Relation is a list of alternatives, any one of which satisfies it.
	Relation = deb.Relation
)

// ParseRelations parses a binary package's relationship field; see
// deb.ParseRelations.
func ParseRelations(field string) ([]Relation, error) { return deb.ParseRelations(field) }
