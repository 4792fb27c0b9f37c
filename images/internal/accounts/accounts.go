package accounts

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// The paths of the account databases in an image (Entry paths).
const (
	PasswdPath = "etc/passwd"
	GroupPath  = "etc/group"
)

// maxFile bounds how much of etc/passwd or etc/group is kept for name
// lookups.
const maxFile = 16 << 20

// Parse reads passwd(5) or group(5) text into id → name. The first line
// for an id wins, as with getpwuid(3). Malformed lines and NIS "+"/"-"
// lines are ignored.
func Parse(b []byte) map[int]string {
	names := map[int]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), maxFile)
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

// Capture keeps the content of the image's etc/passwd and etc/group as it
// streams past.
type Capture struct {
	passwd, group []byte
	hasPasswd     bool
	hasGroup      bool
}

// Target returns where to copy the content of entry path p, or nil, and
// marks p as seen.
func (a *Capture) Target(p string) *[]byte {
	switch p {
	case PasswdPath:
		a.hasPasswd = true
		return &a.passwd
	case GroupPath:
		a.hasGroup = true
		return &a.group
	}
	return nil
}

// Forget marks etc/passwd or etc/group (path p) as not seen.
func (a *Capture) Forget(p string) {
	switch p {
	case PasswdPath:
		a.hasPasswd, a.passwd = false, nil
	case GroupPath:
		a.hasGroup, a.group = false, nil
	}
}

// Names parses what was captured: id → name of users and of groups, nil
// for a file not seen.
func (a *Capture) Names() (users, groups map[int]string) {
	if a.hasPasswd {
		users = Parse(a.passwd)
	}
	if a.hasGroup {
		groups = Parse(a.group)
	}
	return users, groups
}

// Appender appends to *Dst up to 16 MiB, the most of an account file kept
// for name lookups; it takes, and drops, the rest.
type Appender struct{ Dst *[]byte }

func (l Appender) Write(p []byte) (int, error) {
	if room := maxFile - len(*l.Dst); room > 0 {
		*l.Dst = append(*l.Dst, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
