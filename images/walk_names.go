package images

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// The image's own account databases: the names of an image's owners come
// from these files inside the image, never from the host that reads it.
const (
	passwdPath = "etc/passwd"
	groupPath  = "etc/group"
)

// maxAccountFile bounds how much of etc/passwd or etc/group is kept for
// name lookups.
const maxAccountFile = 16 << 20

// parseAccounts reads passwd(5) or group(5) text into id → name. The first
// line for an id wins, as with getpwuid(3). Malformed lines and NIS
// "+"/"-" lines are ignored.
func parseAccounts(b []byte) map[int]string {
	names := map[int]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), maxAccountFile)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		f := strings.SplitN(line, ":", 4)
		if len(f) < 3 || f[0] == "" {
			continue
		}
		id, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		if _, dup := names[int(id)]; !dup {
			names[int(id)] = f[0]
		}
	}
	return names
}

// accountCapture keeps the content of the image's etc/passwd and etc/group
// as it streams past, so names can be filled in once every entry is known.
type accountCapture struct {
	passwd, group []byte
	hasPasswd     bool
	hasGroup      bool
}

// target returns where to copy the content of entry path p, or nil, and
// marks p as seen.
func (a *accountCapture) target(p string) *[]byte {
	switch p {
	case passwdPath:
		a.hasPasswd = true
		return &a.passwd
	case groupPath:
		a.hasGroup = true
		return &a.group
	}
	return nil
}

// forget marks etc/passwd or etc/group (path p) as not seen.
func (a *accountCapture) forget(p string) {
	switch p {
	case passwdPath:
		a.hasPasswd, a.passwd = false, nil
	case groupPath:
		a.hasGroup, a.group = false, nil
	}
}

// limitedAppender appends to *dst up to maxAccountFile bytes.
type limitedAppender struct{ dst *[]byte }

func (l limitedAppender) Write(p []byte) (int, error) {
	if room := maxAccountFile - len(*l.dst); room > 0 {
		*l.dst = append(*l.dst, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// applyNames sets Uname and Gname of every non-hardlink entry from users
// and groups (id → name); ids not listed get no name. A nil map leaves
// that name as it is.
func applyNames(entries []Entry, users, groups map[int]string) {
	for i := range entries {
		e := &entries[i]
		if e.Type == TypeHardlink {
			continue
		}
		if users != nil {
			e.Uname = users[e.UID]
		}
		if groups != nil {
			e.Gname = groups[e.GID]
		}
	}
}
