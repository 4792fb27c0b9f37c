package rpm2deb

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"

	"github.com/ingotfleet/ingot/builder/rpm"
	"github.com/ingotfleet/ingot/images"
)

func fileType(mode uint32) (images.Type, bool) {
	switch mode & rpm.ModeType {
	case rpm.ModeRegular:
		return images.TypeFile, true
	case rpm.ModeDir:
		return images.TypeDir, true
	case rpm.ModeSymlink:
		return images.TypeSymlink, true
	case rpm.ModeChar:
		return images.TypeChar, true
	case rpm.ModeBlock:
		return images.TypeBlock, true
	case rpm.ModeFifo:
		return images.TypeFifo, true
	case rpm.ModeSocket:
		return images.TypeSocket, true
	}
	return 0, false
}

// spooled is what reading the payload learns about the header's files:
// their clean paths, hardlink sets, and where each regular file's
// content is in the spool.
type spooled struct {
	clean      []string       // header file i's path, cleaned
	index      map[string]int // clean path → header index
	linkSet    map[int][]int  // header index → its hardlink set (2 or more)
	seen       []bool         // in the payload
	offs       []int64        // content's offset in the spool
	md5s       []string       // content's MD5, hex
	hasContent []bool
	spoolOff   int64 // end of the spool
}

// readPayload reads the cpio payload, checks it against the header and
// spools file contents; then builds the data archive's file list.
func (c *converter) readPayload(ctx context.Context) error {
	s, err := c.headerFiles()
	if err != nil {
		return err
	}
	newHash, err := c.p.DigestHash()
	if err != nil {
		return fmt.Errorf("%s: %w: %v", c.name, rpm.ErrBadRPM, err)
	}
	payload, comp, err := c.openPayload()
	if err != nil {
		return err
	}
	defer func() { _ = payload.Close() }() // read to its end, or abandoned after an error
	c.rep.add(Mapped, "Payload", comp+" cpio", "data.tar"+c.opts.Compression.ext(), "")
	cr := rpm.NewCpioReader(payload, s.strippedSize(c.p.Files()))
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: payload: %w", c.name, err)
		}
		ix, err := c.memberIndex(h, s)
		if err != nil {
			return err
		}
		if err := c.spoolMember(cr, h, ix, s, newHash); err != nil {
			return err
		}
	}
	// Drain to the end so the payload digest is checked.
	if _, err := io.Copy(io.Discard, payload); err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	return c.buildFiles(s)
}

// headerFiles checks the header's file paths (each absolute, below /,
// listed once, of a known type) and finds its hardlink sets.
func (c *converter) headerFiles() (*spooled, error) {
	hf := c.p.Files()
	s := &spooled{
		clean:      make([]string, len(hf)),
		index:      map[string]int{},
		linkSet:    map[int][]int{},
		seen:       make([]bool, len(hf)),
		offs:       make([]int64, len(hf)),
		md5s:       make([]string, len(hf)),
		hasContent: make([]bool, len(hf)),
	}
	for i, f := range hf {
		cp, err := images.CleanPath(f.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: header file %d %q: %w", c.name, i, f.Path, err)
		}
		if !strings.HasPrefix(f.Path, "/") || cp == "." {
			return nil, fmt.Errorf("%s: header file %d %q: %w: not an absolute path below /", c.name, i, f.Path, images.ErrUnsafePath)
		}
		if _, dup := s.index[cp]; dup {
			return nil, fmt.Errorf("%s: header lists %q twice", c.name, f.Path)
		}
		if _, ok := fileType(f.Mode); !ok {
			return nil, fmt.Errorf("%s: header file %q: unknown file type in mode %o", c.name, f.Path, f.Mode)
		}
		s.index[cp] = i
		s.clean[i] = cp
	}
	// Hardlink sets: regular files sharing (device, inode). rpm writes the
	// content once, with the set's last member in header order.
	sets := map[[2]uint32][]int{}
	for i, f := range hf {
		if f.Mode&rpm.ModeType == rpm.ModeRegular && f.HasInode && f.Flags&rpm.FileGhost == 0 {
			k := [2]uint32{f.Dev, f.Inode}
			sets[k] = append(sets[k], i)
		}
	}
	for _, set := range sets {
		if len(set) > 1 {
			for _, i := range set {
				s.linkSet[i] = set
			}
		}
	}
	return s, nil
}

// strippedSize gives the payload size of a stripped cpio member, which
// only the header knows: a regular file's size (0 for a hardlink set's
// members but the last), a symlink's target length.
func (s *spooled) strippedSize(hf []rpm.File) func(int) (int64, error) {
	return func(ix int) (int64, error) {
		if ix < 0 || ix >= len(hf) {
			return 0, fmt.Errorf("file index %d out of range (header has %d files)", ix, len(hf))
		}
		f := hf[ix]
		switch f.Mode & rpm.ModeType {
		case rpm.ModeRegular:
			if set := s.linkSet[ix]; len(set) > 1 && set[len(set)-1] != ix {
				return 0, nil
			}
			return f.Size, nil
		case rpm.ModeSymlink:
			return f.Size, nil
		}
		return 0, nil
	}
}

// memberIndex finds a payload member's file in the header, by index
// (stripped members) or by path, and marks it seen.
func (c *converter) memberIndex(h *rpm.CpioHeader, s *spooled) (int, error) {
	hf := c.p.Files()
	ix := h.Index
	if ix < 0 {
		cp, err := images.CleanPath(h.Name)
		if err != nil {
			return 0, fmt.Errorf("%s: payload member %q: %w", c.name, h.Name, err)
		}
		if strings.HasPrefix(h.Name, "/") {
			return 0, fmt.Errorf("%s: payload member %q: %w: absolute path", c.name, h.Name, images.ErrUnsafePath)
		}
		i, ok := s.index[cp]
		if !ok {
			return 0, fmt.Errorf("%s: payload member %q is not in the header's file list", c.name, h.Name)
		}
		ix = i
	} else if ix >= len(hf) {
		return 0, fmt.Errorf("%s: payload member index %d out of range", c.name, ix)
	}
	if s.seen[ix] {
		return 0, fmt.Errorf("%s: payload holds %q twice", c.name, hf[ix].Path)
	}
	s.seen[ix] = true
	return ix, nil
}

// spoolMember copies a regular file's content from the payload to the
// spool, checking its size and the header's digest of it. Other members
// carry nothing the header does not say.
func (c *converter) spoolMember(cr io.Reader, h *rpm.CpioHeader, ix int, s *spooled, newHash func() hash.Hash) error {
	f := c.p.Files()[ix]
	if f.Mode&rpm.ModeType != rpm.ModeRegular {
		return nil // attributes and link targets come from the header
	}
	want := f.Size
	if set := s.linkSet[ix]; len(set) > 1 && h.Size == 0 {
		return nil // another member of the set carries the content
	}
	if h.Size != want {
		return fmt.Errorf("%s: payload member %q has %d bytes, header says %d", c.name, f.Path, h.Size, want)
	}
	md := md5.New()
	var dh hash.Hash
	var w io.Writer = md
	if f.Digest != "" {
		dh = newHash()
		w = io.MultiWriter(md, dh)
	}
	n, err := io.Copy(io.MultiWriter(c.spool, w), cr)
	if err != nil {
		return fmt.Errorf("%s: payload member %q: %w", c.name, f.Path, err)
	}
	if n != want {
		return fmt.Errorf("%s: %w: payload member %q truncated", c.name, rpm.ErrBadRPM, f.Path)
	}
	if dh != nil && hex.EncodeToString(dh.Sum(nil)) != f.Digest {
		return fmt.Errorf("%s: %w: %q: content digest differs from the header's", c.name, rpm.ErrBadRPM, f.Path)
	}
	s.md5s[ix] = hex.EncodeToString(md.Sum(nil))
	s.offs[ix] = s.spoolOff
	s.hasContent[ix] = true
	s.spoolOff += n
	for _, j := range s.linkSet[ix] {
		s.md5s[j], s.offs[j], s.hasContent[j] = s.md5s[ix], s.offs[ix], true
	}
	return nil
}

func (c *converter) clampTime(t int64) int64 {
	if t > c.clamp || t < 0 {
		return c.clamp
	}
	return t
}

// buildFiles makes the data archive's file list from the header's, in
// path order, reporting what it drops and approximates.
func (c *converter) buildFiles(s *spooled) error {
	hf := c.p.Files()
	c.byPath = map[string]*debFile{}
	c.caps = map[string]string{}
	order := make([]int, len(hf))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return images.ComparePaths(s.clean[order[a]], s.clean[order[b]]) < 0 })
	firstOfSet := map[int]string{}
	paths := make(map[string]bool, len(s.clean))
	for _, p := range s.clean {
		paths[p] = true
	}
	for _, i := range order {
		if err := c.buildFile(i, s, firstOfSet, paths); err != nil {
			return err
		}
	}
	return nil
}

// buildFile adds header file i to the data archive, or reports why not.
// firstOfSet maps a hardlink set (its first index) to the path of its
// member already added, which later members link to.
func (c *converter) buildFile(i int, s *spooled, firstOfSet map[int]string, paths map[string]bool) error {
	f := c.p.Files()[i]
	cp := s.clean[i]
	if f.Flags&rpm.FileGhost != 0 {
		c.rep.add(Dropped, "%ghost", f.Path, "", "not in the payload; dpkg does not own it")
		return nil
	}
	t, _ := fileType(f.Mode)
	if !s.seen[i] {
		return fmt.Errorf("%s: %w: %q is in the header but not in the payload", c.name, rpm.ErrBadRPM, f.Path)
	}
	if why := pythonBytecode(cp, t, paths); why != "" {
		// Before a hardlink set's first member is chosen: the next
		// member kept carries the content.
		c.rep.add(Dropped, "bytecode", f.Path, "", why)
		return nil
	}
	df := &debFile{
		Path:  cp,
		Type:  t,
		Mode:  f.Mode & 0o7777,
		User:  f.User,
		Group: f.Group,
		Mtime: c.clampTime(f.Mtime),
	}
	switch t {
	case images.TypeFile:
		if err := c.fileContent(df, i, s, firstOfSet); err != nil {
			return err
		}
	case images.TypeSymlink:
		if f.LinkTo == "" {
			return fmt.Errorf("%s: %w: symlink %q has no target in the header", c.name, rpm.ErrBadRPM, f.Path)
		}
		df.Link = f.LinkTo
		if short, ok := shortenSymlink(cp, f.LinkTo); ok {
			df.Link = short
			c.rep.add(Approximated, "symlink", f.Path+" -> "+f.LinkTo, short, "same target, shortest relative form (lintian lengthy-symlink)")
		}
	case images.TypeChar, images.TypeBlock:
		df.Major, df.Minor = (f.Rdev>>8)&0xff, f.Rdev&0xff
	case images.TypeSocket:
		c.rep.add(Dropped, "socket", f.Path, "", "a .deb cannot hold a socket")
		return nil
	}
	c.fileAttributes(f, cp, t, df)
	return c.add(df)
}

// fileContent points a regular file at its content in the spool, or
// makes it a hardlink to its set's member added first.
func (c *converter) fileContent(df *debFile, i int, s *spooled, firstOfSet map[int]string) error {
	f := c.p.Files()[i]
	if !s.hasContent[i] && f.Size == 0 {
		s.hasContent[i], s.md5s[i] = true, md5hex(nil)
	}
	if !s.hasContent[i] {
		return fmt.Errorf("%s: %w: no content for %q in the payload", c.name, rpm.ErrBadRPM, f.Path)
	}
	df.Size, df.off, df.MD5 = f.Size, s.offs[i], s.md5s[i]
	set := s.linkSet[i]
	if len(set) < 2 {
		return nil
	}
	first, ok := firstOfSet[set[0]]
	if !ok {
		firstOfSet[set[0]] = df.Path
		return nil
	}
	df.Type, df.Link, df.Size = images.TypeHardlink, first, 0
	tgt := c.byPath[first]
	if tgt.Mode != df.Mode || tgt.User != df.User || tgt.Group != df.Group {
		c.rep.add(Approximated, "hardlink", f.Path, "/"+first,
			fmt.Sprintf("one inode: mode %04o %s:%s of %s applies, not %04o %s:%s", tgt.Mode, tgt.User, tgt.Group, "/"+first, df.Mode, df.User, df.Group))
	} else {
		c.rep.add(Mapped, "hardlink", f.Path, "/"+first, "")
	}
	return nil
}

// fileAttributes reports (and, for capabilities and conffiles, records)
// what a file's mode bits, capabilities, %config flag and owner become.
// t is the file's type in the header.
func (c *converter) fileAttributes(f rpm.File, cp string, t images.Type, df *debFile) {
	if f.Mode&0o6000 != 0 && t == images.TypeFile {
		c.rep.add(Mapped, "setuid/gid", f.Path, fmt.Sprintf("%04o", df.Mode), "")
	}
	if f.Caps != "" {
		c.caps[f.Path] = f.Caps
		c.rep.add(Approximated, "capability", f.Path+" "+f.Caps, "postinst setcap", "dpkg does not unpack extended attributes; postinst applies them (Depends: libcap2-bin)")
	}
	if f.Flags&rpm.FileConfig == 0 && strings.HasPrefix(cp, "etc/") && t == images.TypeFile {
		c.conf = append(c.conf, "/"+cp)
		c.rep.add(Approximated, "conffile", f.Path, "conffile", "added: not %config in the RPM, but Debian makes every file in /etc a conffile; dpkg keeps local changes where rpm would overwrite them")
	}
	if f.Flags&rpm.FileConfig != 0 {
		switch {
		case t != images.TypeFile && t != images.TypeHardlink:
			c.rep.add(Dropped, "%config", f.Path, "", "not a regular file: not a conffile")
		case !strings.HasPrefix(cp, "etc/"):
			c.rep.add(Approximated, "%config", f.Path, "", "outside /etc: not a conffile (Debian policy)")
		default:
			c.conf = append(c.conf, "/"+cp)
			if f.Flags&rpm.FileNoReplace != 0 {
				c.rep.add(Mapped, "%config", f.Path, "conffile", "")
			} else {
				c.rep.add(Approximated, "%config", f.Path, "conffile", "rpm replaces a changed file and saves .rpmsave; dpkg keeps it and asks")
			}
		}
	}
	if u := f.User; u != "root" {
		c.rep.add(Approximated, "owner", f.Path, f.User+":"+f.Group, "by name; dpkg looks the ids up when it unpacks, 0 if the user does not exist yet")
	} else if f.Group != "root" {
		c.rep.add(Approximated, "owner", f.Path, f.User+":"+f.Group, "by name; dpkg looks the ids up when it unpacks, 0 if the group does not exist yet")
	}
}
