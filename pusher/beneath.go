package pusher

import (
	"os"

	"github.com/ingotfleet/ingot/images"
	"github.com/ingotfleet/ingot/internal/beneath"
)

// The agent reaches the root, its stage and its backups only through
// package beneath (descriptor-relative, no-follow). These are the short
// names the commit, fetch and undo code uses for it.

// dirTree is a directory the agent reaches only through its descriptor:
// a beneath.Dir with the descriptor and path at hand.
type dirTree struct {
	*beneath.Dir
	fd   int
	path string
}

// openTree opens the directory at path (which the configuration names, so
// symlinks in it are followed once, here).
func openTree(path string) (*dirTree, error) {
	d, err := beneath.Open(path)
	if err != nil {
		return nil, err
	}
	return &dirTree{Dir: d, fd: d.Fd(), path: d.Path()}, nil
}

func (t *dirTree) Close() error {
	if t == nil {
		return nil
	}
	return t.Dir.Close()
}

func (t *dirTree) abs(rel string) string                    { return t.Abs(rel) }
func (t *dirTree) dir(rel string) (int, error)              { return t.OpenDir(rel) }
func (t *dirTree) parent(rel string) (int, string, error)   { return t.Parent(rel) }
func (t *dirTree) openRegular(rel string) (*os.File, error) { return t.OpenRegular(rel) }

var (
	openRegularAt   = beneath.OpenRegularAt
	lstatAt         = beneath.Lstat
	existsAt        = beneath.Exists
	checkPrivateDir = beneath.CheckPrivateDir
)

// attrTarget is a node whose attributes the agent sets (see
// beneath.Target); a literal {fd, what} is the open non-symlink fd.
type attrTarget struct {
	t    *beneath.Target
	fd   int
	what string
}

// openAttrTarget opens name in dirfd without following it and checks it
// is of type typ: a node swapped for something else is not touched.
func openAttrTarget(dirfd int, name string, typ images.Type, what string) (*attrTarget, error) {
	t, err := beneath.OpenTarget(dirfd, name, images.IFMT(typ), typ.String(), what)
	if err != nil {
		return nil, err
	}
	return &attrTarget{t: t, fd: t.Fd(), what: what}, nil
}

func (a *attrTarget) Close() { a.target().Close() }

func (a *attrTarget) target() *beneath.Target {
	if a.t == nil {
		a.t = beneath.TargetOf(a.fd, a.what)
	}
	return a.t
}

// setAttrs sets owner, mode, xattrs and mtime to e's, changing only what
// differs from have (nil: unknown).
func (a *attrTarget) setAttrs(e, have *images.Entry) error {
	want := attrsOf(e)
	if have == nil {
		return a.target().SetAttrs(&want, nil)
	}
	h := attrsOf(have)
	return a.target().SetAttrs(&want, &h)
}

func attrsOf(e *images.Entry) beneath.Attrs {
	return beneath.Attrs{UID: e.UID, GID: e.GID, Mode: e.Mode, Xattrs: e.Xattrs, Mtime: e.Mtime}
}

// setAttrsAt sets name's (in dirfd) attributes to e's; name must still be
// of e's type.
func setAttrsAt(dirfd int, name string, e, have *images.Entry, what string) error {
	typ := e.Type
	if typ == images.TypeHardlink {
		typ = images.TypeFile
	}
	a, err := openAttrTarget(dirfd, name, typ, what)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.setAttrs(e, have)
}
