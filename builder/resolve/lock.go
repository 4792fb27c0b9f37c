package resolve

import (
	"github.com/ingotfleet/ingot/builder/debrepo"
	"github.com/ingotfleet/ingot/builder/spec"
)

// NewLock records a resolved package set: every suite of the index (with
// the sha256 of its verified InRelease and its Date) and every package.
// SourceDateEpoch is the newest Date of the suites.
func NewLock(idx *debrepo.Index, pkgs []*debrepo.Package, specDigest string) *spec.Lock {
	l := &spec.Lock{Version: spec.LockVersion, SpecSHA256: specDigest}
	for _, s := range idx.Suites {
		l.Repositories = append(l.Repositories, spec.LockedRepository{
			URL: s.URL, Suite: s.Suite, Components: s.Components,
			InReleaseSHA256: s.InReleaseSHA256, Date: s.Release.RawDate,
		})
		if t := s.Release.Date.Unix(); t > l.SourceDateEpoch {
			l.SourceDateEpoch = t
		}
	}
	for _, p := range pkgs {
		l.Packages = append(l.Packages, spec.LockedPackage{
			Name: p.Name, Version: p.Version, Architecture: p.Architecture,
			Repository: p.Repository, Filename: p.Filename, Size: p.Size, SHA256: p.SHA256,
			Essential: p.Essential, Priority: p.Priority,
		})
	}
	l.Sort()
	return l
}
