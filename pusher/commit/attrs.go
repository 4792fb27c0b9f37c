package commit

import (
	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/beneath"
)

// The agent reaches the root, its stage and its backups only through
// package beneath (descriptor-relative, no-follow). What stays here is
// the one thing beneath does not know: how an image entry's attributes
// map onto a node's (beneath.Attrs), a hardlink's being its file's.

// setAttrs sets t's owner, mode, xattrs and mtime to e's, changing only
// what differs from have (nil: unknown).
func setAttrs(t *beneath.Target, e, have *images.Entry) error {
	want := attrsOf(e)
	if have == nil {
		return t.SetAttrs(&want, nil)
	}
	h := attrsOf(have)
	return t.SetAttrs(&want, &h)
}

func attrsOf(e *images.Entry) beneath.Attrs {
	return beneath.Attrs{UID: e.UID, GID: e.GID, Mode: e.Mode, Xattrs: e.Xattrs, Mtime: e.Mtime}
}

// setAttrsAt sets name's (in dirfd) attributes to e's; name must still be
// of e's type (a hardlink's: a regular file).
func setAttrsAt(dirfd int, name string, e, have *images.Entry, what string) error {
	typ := e.Type
	if typ == images.TypeHardlink {
		typ = images.TypeFile
	}
	t, err := beneath.OpenTarget(dirfd, name, images.IFMT(typ), typ.String(), what)
	if err != nil {
		return err
	}
	defer t.Close()
	return setAttrs(t, e, have)
}
