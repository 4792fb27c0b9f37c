package beneath

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// CheckPrivateDir makes sure no user but root can change what is at path
// or above it: every directory from / down is owned by root (or the
// process's user) and writable by nobody else, unless sticky (like /tmp).
// A directory whose files are then reached by path (the agent's state
// directory) must be such a place. Messages call it the state directory.
func CheckPrivateDir(path string) error {
	real, err := evalDir(path)
	if err != nil {
		return err
	}
	me := uint32(os.Geteuid())
	p := real
	for {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		if st.Uid != 0 && st.Uid != me {
			return fmt.Errorf("state directory %s: %s is owned by uid %d: only root may own it and the directories above it", path, p, st.Uid)
		}
		if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
			return fmt.Errorf("state directory %s: %s is writable by group or others (mode %04o): another user could replace what the agent keeps there", path, p, st.Mode&0o7777)
		}
		if p == "/" {
			return nil
		}
		p = dirOf(p)
	}
}

func dirOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// evalDir is path made absolute with its symlinks resolved.
func evalDir(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	return real, nil
}
